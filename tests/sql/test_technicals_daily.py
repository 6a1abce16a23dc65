"""marts.technicals_daily on inline rows: hand-computed values, an independent pandas check,
and incremental builds equal to full ones."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import PRICE_COLUMNS, RUN, built_in_full, copy_of_sql_dir, insert_prices
from transforms.runner import ModelError, build, input_start_for

COLS = "ticker, trade_date, close, return_1d_pct, sma_50, sma_100, sma_200, pct_to_sma_50, pct_to_sma_100, pct_to_sma_200"
# Only the models under test: other marts are built and tested by their own modules.
TECHNICALS_ONLY = ["stg_prices_daily", "technicals_daily"]
NEW_FLOAT_COLS = [
    "adj_close", "return_5d_pct", "return_21d_pct", "sma_20", "sma_125", "pct_to_sma_20", "pct_to_sma_125",
    "high_52w", "low_52w", "drawdown_from_52w_high_pct", "realized_vol_21d_pct", "volume_avg_50", "volume_ratio_50",
]


def rows(con, where="true"):
    return con.execute(f"select {COLS} from marts.technicals_daily where {where} order by ticker, trade_date").fetchall()


def frame(con):
    f = con.execute("select * from marts.technicals_daily order by ticker, trade_date").df()
    f["trade_date"] = f["trade_date"].dt.date
    return f


def insert_bars(con, bars):
    """bars: (ticker, trade_date, close, adj_close, volume) tuples; volume may be None."""
    insert_prices(con, bars, (*PRICE_COLUMNS, "volume"))


def test_returns_use_adj_close_and_short_windows_are_null(mem):
    # A $1 dividend on day 2: the close is flat, but the adjusted close rose 1/99.
    insert_prices(mem, [("X", dt.date(2025, 1, 2), 100.0, 99.0), ("X", dt.date(2025, 1, 3), 100.0, 100.0), ("X", dt.date(2025, 1, 6), 110.0, 110.0)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    got = rows(mem)
    assert got[0][3] is None
    assert got[1][3] == pytest.approx(100 * (100 / 99 - 1))
    assert got[2][3] == pytest.approx(10.0)
    assert all(r[4] is None and r[5] is None and r[6] is None and r[7] is None for r in got)
    new = frame(mem)
    for c in ("return_5d_pct", "return_21d_pct", "sma_20", "sma_125", "high_52w", "low_52w", "is_52w_high",
              "drawdown_from_52w_high_pct", "realized_vol_21d_pct", "volume_avg_50", "volume_ratio_50"):
        assert new[c].isna().all(), c


def test_fifty_day_average_by_hand(mem):
    days = calendar.sessions("2024-01-02", "2024-12-31")[:51]
    insert_prices(mem, [("X", d, float(i + 1), float(i + 1)) for i, d in enumerate(days)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    got = rows(mem)
    assert got[48][4] is None  # 49 closes: not enough for a 50-day average
    assert got[49][4] == pytest.approx(25.5)  # mean of 1..50
    assert got[49][7] == pytest.approx(100 * (25.5 / 50 - 1))  # -49.0: the average is 49% below the close
    assert got[50][4] == pytest.approx(26.5)  # mean of 2..51
    assert got[50][7] == pytest.approx(100 * (26.5 / 51 - 1))
    assert got[50][5] is None


def test_short_returns_twenty_day_average_and_volume_by_hand(mem):
    days = calendar.sessions("2024-01-02", "2024-12-31")[:52]
    # close = adj_close = i + 1 on day i; volume = i + 1 except a missing one on day 51.
    insert_bars(mem, [("X", d, float(i + 1), float(i + 1), None if i == 51 else i + 1) for i, d in enumerate(days)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    f = frame(mem)
    assert pd.isna(f.loc[4, "return_5d_pct"]) and f.loc[5, "return_5d_pct"] == pytest.approx(100 * (6 / 1 - 1))
    assert pd.isna(f.loc[20, "return_21d_pct"]) and f.loc[21, "return_21d_pct"] == pytest.approx(100 * (22 / 1 - 1))
    assert pd.isna(f.loc[18, "sma_20"])
    assert f.loc[19, "sma_20"] == pytest.approx(10.5)  # mean of 1..20
    assert f.loc[19, "pct_to_sma_20"] == pytest.approx(100 * (10.5 / 20 - 1))
    assert pd.isna(f.loc[48, "volume_avg_50"])  # 49 volumes
    assert f.loc[49, "volume_avg_50"] == pytest.approx(25.5)
    assert f.loc[49, "volume_ratio_50"] == pytest.approx(50 / 25.5)
    assert f.loc[50, "volume_avg_50"] == pytest.approx(26.5)
    assert pd.isna(f.loc[51, "volume"]) and pd.isna(f.loc[51, "volume_avg_50"])  # 49 volumes in the window
    assert pd.isna(f.loc[51, "volume_ratio_50"])


def test_52_week_range_by_hand(mem):
    days = calendar.sessions("2023-01-03", "2024-12-31")[:254]
    closes = [float(i + 1) for i in range(252)] + [100.0, 1.5]  # a rise to 252, a fall to 100, a new low
    insert_prices(mem, [("X", d, c, c) for d, c in zip(days, closes)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    f = frame(mem).set_index("trade_date")
    assert f.loc[days[250], ["high_52w", "low_52w", "is_52w_high", "drawdown_from_52w_high_pct"]].isna().all()
    assert (f.loc[days[251], "high_52w"], f.loc[days[251], "low_52w"]) == (252.0, 1.0)
    assert f.loc[days[251], "is_52w_high"] == True and f.loc[days[251], "is_52w_low"] == False  # noqa: E712
    assert f.loc[days[251], "drawdown_from_52w_high_pct"] == 0
    # Day 252: the window is closes 2..252 and 100.
    assert (f.loc[days[252], "high_52w"], f.loc[days[252], "low_52w"]) == (252.0, 2.0)
    assert f.loc[days[252], "is_52w_high"] == False and f.loc[days[252], "is_52w_low"] == False  # noqa: E712
    assert f.loc[days[252], "drawdown_from_52w_high_pct"] == pytest.approx(100 * (100 / 252 - 1))
    # Day 253: 1.5 is below everything in closes 3..252, 100.
    assert (f.loc[days[253], "high_52w"], f.loc[days[253], "low_52w"]) == (252.0, 1.5)
    assert f.loc[days[253], "is_52w_low"] == True  # noqa: E712
    assert f.loc[days[253], "drawdown_from_52w_high_pct"] == pytest.approx(100 * (1.5 / 252 - 1))


def test_realized_volatility_by_hand(mem):
    # Log returns alternate +a, -a. The last 21 of 21 returns are 11 x (+a) and 10 x (-a):
    # mean a/21, sum of squared deviations 21a^2 - a^2/21, sample variance a^2 * 22/21.
    a = 0.01
    days = calendar.sessions("2024-01-02", "2024-12-31")[:23]
    log_adj = np.concatenate([[0.0], np.cumsum([a if k % 2 == 0 else -a for k in range(22)])])
    # The close drifts away from adj_close: volatility must come from adj_close alone.
    insert_prices(mem, [("X", d, 50.0 + i, float(100 * math.exp(log_adj[i]))) for i, d in enumerate(days)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    f = frame(mem)
    assert f["realized_vol_21d_pct"].iloc[:21].isna().all()  # 20 returns or fewer
    assert f.loc[21, "realized_vol_21d_pct"] == pytest.approx(a * math.sqrt(22 / 21) * math.sqrt(252) * 100)
    assert f.loc[21, "realized_vol_21d_pct"] == pytest.approx(16.2481, abs=1e-4)
    # Day 22: returns 2..22 are 10 x (+a) and 11 x (-a), the mirror image: same deviation.
    assert f.loc[22, "realized_vol_21d_pct"] == pytest.approx(a * math.sqrt(22 / 21) * math.sqrt(252) * 100)


def test_a_non_positive_price_leaves_its_returns_out_of_the_volatility(mem):
    # The land checks quarantine such rows; one reaching raw by another way must not fail the
    # build (ln) nor count as a return. Day 30's adj_close is 0: returns 30 and 31 are missing,
    # so the 21-return windows of days 30..51 are short (NULL) and day 52's is whole again. A
    # second ticker has 25 non-positive days in a row: every window of missing returns is NULL
    # too, never a volatility of 0.
    days = calendar.sessions("2024-01-02", "2024-12-31")[:80]
    rng = np.random.default_rng(7)
    adj = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 80)))
    broken = {"ONE": {30}, "RUN": set(range(20, 45))}
    bars = [(t, d, 50.0, 0.0 if i in broken[t] else float(adj[i]), 1000 + i)
            for t in broken for i, d in enumerate(days)]
    insert_bars(mem, bars)
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    f = frame(mem)
    for ticker, bad in broken.items():
        vol = f[f["ticker"] == ticker]["realized_vol_21d_pct"].tolist()
        missing = {0} | bad | {i + 1 for i in bad}  # the first day has no return either
        for i in range(80):
            whole = i >= 21 and not missing & set(range(i - 20, i + 1))
            if not whole:
                assert pd.isna(vol[i]), (ticker, i, vol[i])
                continue
            returns = np.diff(np.log(adj[i - 21 : i + 1]))
            assert vol[i] == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252) * 100, rel=1e-12), (ticker, i)


def synthetic(seed=1, n=320):
    rng = np.random.default_rng(seed)
    days = calendar.sessions("2023-01-03", "2026-12-31")[:n]
    out = []
    for t, drop in (("AAA", set()), ("BBB", set(rng.choice(n, 25, replace=False)))):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        adj = close * np.linspace(0.95, 1.0, n)
        out += [(t, days[i], float(close[i]), float(adj[i])) for i in range(n) if i not in drop]
    return out


def with_volume(data, seed=1):
    """Adds a volume to each row: random, with a few gaps (an index has none) on BBB."""
    rng = np.random.default_rng(seed)
    out = []
    for t, d, c, a in data:
        v = int(rng.integers(1_000, 1_000_000))
        out.append((t, d, c, a, None if t == "BBB" and rng.random() < 0.02 else v))
    return out


def pandas_technicals(data):
    f = pd.DataFrame(data, columns=["ticker", "trade_date", "close", "adj_close", "volume"][: len(data[0])])
    f = f.sort_values(["ticker", "trade_date"]).reset_index(drop=True)
    g = f.groupby("ticker")
    for n in (1, 5, 21):
        f[f"return_{n}d_pct"] = 100 * (f["adj_close"] / g["adj_close"].shift(n) - 1)
    for n in (20, 50, 100, 125, 200):
        f[f"sma_{n}"] = g["close"].transform(lambda s: s.rolling(n, min_periods=n).mean())
        f[f"pct_to_sma_{n}"] = 100 * (f[f"sma_{n}"] / f["close"] - 1)
    f["high_52w"] = g["close"].transform(lambda s: s.rolling(252, min_periods=252).max())
    f["low_52w"] = g["close"].transform(lambda s: s.rolling(252, min_periods=252).min())
    f["is_52w_high"] = (f["close"] == f["high_52w"]).where(f["high_52w"].notna())
    f["is_52w_low"] = (f["close"] == f["low_52w"]).where(f["low_52w"].notna())
    f["drawdown_from_52w_high_pct"] = 100 * (f["close"] / f["high_52w"] - 1)
    log_ret = np.log(f["adj_close"] / g["adj_close"].shift(1))
    f["realized_vol_21d_pct"] = log_ret.groupby(f["ticker"]).transform(
        lambda s: s.rolling(21, min_periods=21).std(ddof=1)) * np.sqrt(252) * 100
    if "volume" in f:
        vol = f["volume"].astype(float)
        f["volume_avg_50"] = vol.groupby(f["ticker"]).transform(lambda s: s.rolling(50, min_periods=50).mean())
        f["volume_ratio_50"] = vol / f["volume_avg_50"]
    return f


def test_matches_an_independent_pandas_computation(mem):
    data = with_volume(synthetic(n=560))
    insert_bars(mem, data)
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    got = frame(mem)
    want = pandas_technicals(data)
    assert len(got) == len(want)
    assert list(got["ticker"]) == list(want["ticker"]) and list(got["trade_date"]) == list(want["trade_date"])
    float_cols = ["return_1d_pct", "sma_50", "sma_100", "sma_200", "pct_to_sma_50", "pct_to_sma_100", "pct_to_sma_200",
                  "pct_to_sma_125"] + NEW_FLOAT_COLS
    for c in float_cols:
        np.testing.assert_allclose(got[c].astype(float).to_numpy(), want[c].astype(float).to_numpy(), rtol=1e-9,
                                   equal_nan=True, err_msg=c)
    for c in ("is_52w_high", "is_52w_low"):
        pd.testing.assert_series_equal(got[c].astype("boolean"), want[c].astype("boolean"), check_names=False)
    assert got["volume"].astype("Int64").tolist() == want["volume"].astype("Int64").tolist()
    # Enough history for every window, and the flags and gaps are exercised, not vacuous.
    assert got["sma_200"].notna().sum() == (560 - 199) + (560 - 25 - 199)
    assert got["high_52w"].notna().sum() == (560 - 251) + (560 - 25 - 251)
    assert got["is_52w_high"].fillna(False).sum() > 0 and got["is_52w_low"].fillna(False).sum() > 0
    assert got["volume_avg_50"].notna().sum() < got["sma_50"].notna().sum()  # BBB's missing volumes
    assert got["realized_vol_21d_pct"].between(10, 60).sum() > 500  # ~2% daily moves: ~32% a year


def test_incremental_build_equals_a_full_build(mem):
    data = with_volume(synthetic(seed=2, n=650), seed=2)
    cut = dt.date(2025, 1, 1)
    early = [r for r in data if r[1] < cut]
    insert_bars(mem, early)
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)  # the first build is full
    # A later night: new sessions arrive and a recent close is restated.
    restated_day = max(r[1] for r in early)
    mem.execute("update raw.prices_daily set close = close * 1.01, adj_close = adj_close * 1.01 where trade_date = ?", [restated_day])
    insert_bars(mem, [r for r in data if r[1] >= cut])
    # The incremental build must really read a window of history, not everything.
    assert input_start_for(restated_day, 252) > min(r[1] for r in data)
    results = build(mem, run_date=RUN, since=restated_day, select=TECHNICALS_ONLY)
    tech = next(r for r in results if r.relation == "marts.technicals_daily")
    assert tech.mode == "incremental" and tech.rows_written < tech.rows
    incremental = frame(mem)
    recomputed = incremental[incremental["trade_date"] >= restated_day]
    assert recomputed["high_52w"].notna().all() and recomputed["sma_200"].notna().all()  # the long windows are full

    with built_in_full(mem, TECHNICALS_ONLY) as full:
        # Equal to the last bits: DuckDB sums a window in an order that depends on where the
        # partition starts, so averages over the same rows can differ in the 16th digit (a percent near 0 by 1e-12).
        pd.testing.assert_frame_equal(incremental, frame(full), check_exact=False, rtol=1e-12, atol=1e-9)


def test_a_failed_build_publishes_nothing(mem, tmp_path):
    insert_prices(mem, [("X", dt.date(2025, 1, 2), 100.0, 100.0)])
    build(mem, run_date=RUN, select=TECHNICALS_ONLY)
    before = rows(mem)
    insert_prices(mem, [("X", dt.date(2025, 1, 3), 101.0, 101.0)])
    # Same models plus one broken mart downstream: the whole build must roll back.
    sql = copy_of_sql_dir(tmp_path)
    (sql / "marts" / "zz_broken.sql").write_text(
        "-- zz_broken\n-- Grain: none.\n-- Depends on: marts.technicals_daily\n-- Materialized: table\n"
        "select 1 / 0 as x, no_such_column from marts.technicals_daily\n"
    )
    with pytest.raises(ModelError, match="building marts.zz_broken"):
        build(mem, run_date=RUN, since=dt.date(2025, 1, 3), select=TECHNICALS_ONLY + ["zz_broken"], sql_dir=sql)
    assert rows(mem) == before
