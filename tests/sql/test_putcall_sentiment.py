"""marts.putcall_sentiment: averages, trailing percentile ranks, z-scores and the regime, by hand
on arithmetic series and against an independent pandas computation; incremental == full."""

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import RUN, built_in_full, insert_rows
from transforms.runner import build, input_start_for, load_macros

MODELS = ["stg_putcall_daily", "putcall_sentiment"]
DAYS = calendar.sessions("2020-01-02", "2025-12-31")


def insert_putcall(con, rows):
    """rows: (trade_date, scope, ratio); no volumes."""
    insert_rows(con, "raw.putcall_daily", rows, ("trade_date", "scope", "ratio"))


def frame(con):
    f = con.execute("select * from marts.putcall_sentiment order by scope, trade_date").df()
    f["trade_date"] = f["trade_date"].dt.date
    return f


def test_short_averages_by_hand_and_short_windows_are_null(mem):
    # Equity: 0.50, 0.60, ..., 1.40 (ten sessions); a zero ratio (a broken feed row) on day 4
    # is left out, so the averages step over it.
    ratios = [0.5, 0.6, 0.7, 0.0, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
    insert_putcall(mem, [(DAYS[i], "EQUITY", r) for i, r in enumerate(ratios)])
    build(mem, run_date=RUN, select=MODELS)
    f = frame(mem)
    assert list(f["scope"].unique()) == ["equity"]  # scope names are lower-cased by staging
    assert DAYS[3] not in set(f["trade_date"]) and len(f) == 10
    assert f["ratio_ma_5"].iloc[:4].isna().all()
    assert f.loc[4, "ratio_ma_5"] == pytest.approx((0.5 + 0.6 + 0.7 + 0.8 + 0.9) / 5)  # 0.70
    assert f.loc[9, "ratio_ma_5"] == pytest.approx((1.0 + 1.1 + 1.2 + 1.3 + 1.4) / 5)  # 1.20
    assert f["ratio_ma_10"].iloc[:9].isna().all()
    assert f.loc[9, "ratio_ma_10"] == pytest.approx(0.95)  # mean of 0.5..1.4
    assert f["ratio_ma_21"].isna().all()
    for c in ("pct_rank_252", "pct_rank_504", "zscore_252", "regime"):
        assert f[c].isna().all(), c


def test_a_day_without_equity_options_is_left_out_for_every_scope(mem):
    # Day 1 is 9 January 2025 as the real feed has it: equity 0.00, index and total 1.73.
    # Day 2 has a broken index row only: just that row goes.
    feed = {"equity": [0.6, 0.0, 0.7, 0.8], "index": [1.0, 1.73, 0.0, 1.1], "total": [0.8, 1.73, 0.9, 1.0]}
    insert_putcall(mem, [(DAYS[i], scope, r) for scope, rs in feed.items() for i, r in enumerate(rs)])
    build(mem, run_date=RUN, select=MODELS)
    got = {(s, d) for s, d in mem.execute("select scope, trade_date from marts.putcall_sentiment").fetchall()}
    assert got == {("equity", DAYS[i]) for i in (0, 2, 3)} | {("index", DAYS[i]) for i in (0, 3)} | {
        ("total", DAYS[i]) for i in (0, 2, 3)}


def test_a_day_whose_equity_row_was_refused_is_left_out_too(mem):
    # The land checks refuse the 0.00 equity row of 9 January 2025, so raw holds only index and
    # total 1.73 that day: still a broken feed day. Before the equity series begins (the real
    # feed's total ratio starts years earlier), a day without equity is an ordinary day.
    feed = {"total": [0.8, 0.85, 1.73, 0.9], "index": [1.0, 1.1, 1.73, 1.2], "equity": [None, 0.6, None, 0.7]}
    rows = [(DAYS[i], scope, r) for scope, rs in feed.items() for i, r in enumerate(rs) if r is not None]
    insert_putcall(mem, rows)
    build(mem, run_date=RUN, select=MODELS)
    days = {d for (d,) in mem.execute("select distinct trade_date from marts.putcall_sentiment").fetchall()}
    assert days == {DAYS[0], DAYS[1], DAYS[3]}
    assert mem.execute("select count(*) from marts.putcall_sentiment where trade_date = ?", [DAYS[0]]).fetchone()[0] == 2


def test_ranks_zscore_and_regime_by_hand(mem):
    # 252 rising ratios 0.5000, 0.5010, ..., 0.7510, then a collapse to 0.30 and a spike to 0.90.
    ratios = [0.5 + 0.001 * i for i in range(252)] + [0.30, 0.90]
    insert_putcall(mem, [(DAYS[i], "total", r) for i, r in enumerate(ratios)])
    build(mem, run_date=RUN, select=MODELS)
    f = frame(mem)
    assert pd.isna(f.loc[250, "pct_rank_252"]) and pd.isna(f.loc[250, "zscore_252"])
    # Day 252: the largest of its window ranks 100. An arithmetic series of n terms with step h
    # has mean at its middle and sample sd h * sqrt(n (n + 1) / 12); the top sits (n - 1) / 2 steps
    # above the mean: z = 125.5 / sqrt(252 * 253 / 12) = 1.7218.
    assert f.loc[251, "pct_rank_252"] == 100
    assert f.loc[251, "zscore_252"] == pytest.approx(125.5 / math.sqrt(252 * 253 / 12))
    assert f.loc[251, "zscore_252"] == pytest.approx(1.7218, abs=1e-4)
    assert f.loc[251, "regime"] == "fearful"
    # Day 253: 0.30 is the smallest of 0.501..0.751 and itself: 1 of 252.
    assert f.loc[252, "pct_rank_252"] == pytest.approx(100 / 252)
    assert f.loc[252, "regime"] == "complacent"
    window = np.array(ratios[1:253])
    assert f.loc[252, "zscore_252"] == pytest.approx((0.30 - window.mean()) / window.std(ddof=1))
    # Day 254: 0.90 tops 0.502..0.751 and 0.30.
    assert f.loc[253, "pct_rank_252"] == 100 and f.loc[253, "regime"] == "fearful"
    assert f["pct_rank_504"].isna().all()


def test_regime_boundaries():
    con = duckdb.connect()
    load_macros(con)
    got = con.execute(
        "select putcall_regime(0), putcall_regime(20), putcall_regime(20.01), putcall_regime(50), "
        "putcall_regime(79.99), putcall_regime(80), putcall_regime(100), putcall_regime(null)"
    ).fetchone()
    assert got == ("complacent", "complacent", "neutral", "neutral", "neutral", "fearful", "fearful", None)


def synthetic(seed, n):
    """Equity: every session; index: misses about one session in ten; ratios on CBOE's 0.01 grid."""
    rng = np.random.default_rng(seed)
    out = []
    for scope, level, miss in (("equity", 0.62, 0.0), ("index", 1.1, 0.1)):
        r = np.round(level + 0.12 * rng.standard_normal(n) + 0.05 * np.sin(np.arange(n) / 40), 2)
        out += [(DAYS[i], scope, float(max(r[i], 0.05))) for i in range(n) if rng.random() >= miss]
    return out


def pandas_putcall(data):
    f = pd.DataFrame(data, columns=["trade_date", "scope", "ratio"]).sort_values(["scope", "trade_date"])
    f = f.reset_index(drop=True)
    g = f.groupby("scope")["ratio"]
    for n in (5, 10, 21):
        f[f"ratio_ma_{n}"] = g.transform(lambda s: s.rolling(n, min_periods=n).mean())

    def rank(s, n):
        return s.rolling(n, min_periods=n).apply(lambda w: 100 * np.mean(w <= w[-1]), raw=True)

    f["pct_rank_252"] = g.transform(lambda s: rank(s, 252))
    f["pct_rank_504"] = g.transform(lambda s: rank(s, 504))
    mean = g.transform(lambda s: s.rolling(252, min_periods=252).mean())
    sd = g.transform(lambda s: s.rolling(252, min_periods=252).std(ddof=1))
    f["zscore_252"] = (f["ratio"] - mean) / sd
    f["regime"] = np.select(
        [f["pct_rank_252"] <= 20, f["pct_rank_252"] >= 80, f["pct_rank_252"].notna()],
        ["complacent", "fearful", "neutral"], default=None,
    )
    return f


def test_matches_an_independent_pandas_computation(mem):
    data = synthetic(seed=5, n=620)
    insert_putcall(mem, data)
    build(mem, run_date=RUN, select=MODELS)
    got, want = frame(mem), pandas_putcall(data)
    assert list(zip(got["scope"], got["trade_date"])) == list(zip(want["scope"], want["trade_date"]))
    for c in ("ratio_ma_5", "ratio_ma_10", "ratio_ma_21", "pct_rank_252", "pct_rank_504", "zscore_252"):
        np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)
    assert got["regime"].fillna("-").tolist() == pd.Series(want["regime"]).fillna("-").tolist()
    # Not vacuous: every regime occurs, and the index scope's gaps shorten its ranked history.
    assert set(got["regime"].dropna()) == {"complacent", "neutral", "fearful"}
    by_scope = got.groupby("scope")["pct_rank_504"].count()
    assert by_scope["equity"] == 620 - 503 and 0 < by_scope["index"] < by_scope["equity"]


def test_incremental_build_equals_a_full_build(mem):
    data = synthetic(seed=6, n=1000)
    cut = DAYS[900]
    insert_putcall(mem, [r for r in data if r[0] < cut])
    build(mem, run_date=RUN, select=MODELS)
    # A later night: new sessions arrive and the last loaded ratio is revised.
    restated_day = max(r[0] for r in data if r[0] < cut)
    mem.execute("update raw.putcall_daily set ratio = ratio + 0.3 where trade_date = ?", [restated_day])
    insert_putcall(mem, [r for r in data if r[0] >= cut])
    assert input_start_for(restated_day, 504) > DAYS[0]  # the incremental build reads a window, not all
    results = build(mem, run_date=RUN, since=restated_day, select=MODELS)
    result = next(r for r in results if r.relation == "marts.putcall_sentiment")
    assert result.mode == "incremental" and 0 < result.rows_written < result.rows
    incremental = frame(mem)
    assert incremental.loc[incremental["trade_date"] >= restated_day, "pct_rank_504"].notna().all()

    with built_in_full(mem, MODELS) as full:
        # Equal to the last bits: window sums add up in an order that depends on the partition's start.
        pd.testing.assert_frame_equal(incremental, frame(full), check_exact=False, rtol=1e-12, atol=1e-12)
