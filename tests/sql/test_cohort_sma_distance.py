"""marts.cohort_sma_distance: the top-N cohort by market cap (with exclusions), the AI and non-AI
cohorts, their mean and median distance to the 50-DMA worked by hand, an independent pandas
check on random data, and incremental builds equal to full ones.

Market caps come from marts.market_caps_daily, built by the runner from filings (diluted shares
reported before the prices start, so market_cap = shares * close)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import (
    RUN, built_in_full, copy_of_sql_dir, insert_fundamentals, insert_many_prices, insert_universe, models_up_to,
)
from transforms.runner import build

D = dt.date
DAYS = calendar.sessions("2024-01-02", "2025-12-31")
MODELS = models_up_to("cohort_sma_distance")
STAT_COLS = [
    "n_members", "mean_pct_to_sma_50", "median_pct_to_sma_50", "n_below_sma_50",
    "mean_pct_to_sma_100", "median_pct_to_sma_100", "mean_pct_to_sma_200", "median_pct_to_sma_200",
]


def insert_closes(con, rows):
    """rows: (ticker, trade_date, close); adj_close is the close."""
    insert_many_prices(con, [(t, d, c, c) for t, d, c in rows])


def insert_shares(con, shares):
    """One filing per ticker, public before any price: market_cap = shares * close."""
    insert_fundamentals(
        con, [(t, float(s)) for t, s in shares.items()], ("ticker", "diluted_shares"),
        period_end=D(2023, 9, 30), report_date=D(2023, 11, 1),
    )


def table(con, where="true"):
    return con.execute(f"select * from marts.cohort_sma_distance where {where} order by trade_date, cohort").df()


def sql_dir_with(tmp_path, macros):
    """A copy of sql/ whose macros.sql ends with overrides (later definitions win)."""
    sql = copy_of_sql_dir(tmp_path)
    with open(sql / "macros.sql", "a") as f:
        f.write("\n" + macros + "\n")
    return sql


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def hand_worked(mem):
    """Every stock closes at 100 until the last of 110 sessions, then at L. With 49 closes of 100
    and one of L, sma_50 = (4900 + L) / 50 and pct_to_sma_50 = 100 * (sma_50 / L - 1):
    ticker  cohort  shares  history   L     cap on the last day   pct_to_sma_50
    T1      ai      10      60        80    800                   24.5
    T2      ai      8       60        125   1,000                 -19.6
    T3      non_ai  7       60        100   700                   0
    T4      non_ai  5       110       50    250                   98  (and pct_to_sma_100 = 99)
    X1      ai      100     60        100   10,000                0   (excluded when the macro says so)
    NOCAP   ai      -       60        200   unknown               -49
    YOUNG   non_ai  1,000   40        100   100,000               NULL: 40 sessions of history
    SPY     an index proxy, not a stock
    """
    spec = {
        "T1": ("ai", 10, 60, 80.0), "T2": ("ai", 8, 60, 125.0), "T3": ("non_ai", 7, 60, 100.0),
        "T4": ("non_ai", 5, 110, 50.0), "X1": ("ai", 100, 60, 100.0), "NOCAP": ("ai", None, 60, 200.0),
        "YOUNG": ("non_ai", 1_000, 40, 100.0),
    }
    days = DAYS[:110]
    rows = []
    for t, (_, _, history, last) in spec.items():
        rows += [(t, d, 100.0) for d in days[110 - history : 109]] + [(t, days[109], last)]
    rows += [("SPY", d, 100.0) for d in days]
    insert_universe(mem, [(t, "stock", c) for t, (c, *_) in spec.items()] + [("SPY", "index_proxy", None)])
    insert_shares(mem, {t: s for t, (_, s, *_) in spec.items() if s} | {"SPY": 1e6})
    insert_closes(mem, rows)
    return mem, days


def test_top_n_with_exclusions_and_cohorts_by_hand(hand_worked, tmp_path):
    con, days = hand_worked
    build(con, run_date=RUN, select=MODELS, sql_dir=sql_dir_with(tmp_path, "create or replace macro cohort_top_n() as 3;\ncreate or replace macro cohort_excluded_tickers() as ['X1'];"))
    got = table(con, f"trade_date = '{days[-1]}'").set_index("cohort")
    assert got.loc["top_n", "members"].tolist() == ["T2", "T1", "T3"]  # by cap: 1,000, 800, 700; X1 excluded, YOUNG has no 50-DMA
    assert got.loc["ai", "members"].tolist() == ["T2", "T1", "NOCAP"]  # no market cap: last
    assert got.loc["non_ai", "members"].tolist() == ["T3", "T4"]
    assert got["n_members"].to_dict() == {"ai": 3, "non_ai": 2, "top_n": 3}
    assert got["mean_pct_to_sma_50"].to_dict() == pytest.approx({"top_n": (-19.6 + 24.5 + 0) / 3, "ai": (-19.6 + 24.5 - 49) / 3, "non_ai": 49.0})
    assert got["median_pct_to_sma_50"].to_dict() == pytest.approx({"top_n": 0.0, "ai": -19.6, "non_ai": 49.0})  # even count: midpoint
    assert got["n_below_sma_50"].to_dict() == {"top_n": 1, "ai": 1, "non_ai": 1}  # closed below the average: positive distance
    assert got.loc["non_ai", "mean_pct_to_sma_100"] == pytest.approx(99.0)  # over the members that have one (T4)
    assert pd.isna(got.loc["top_n", "mean_pct_to_sma_100"]) and got["mean_pct_to_sma_200"].isna().all()
    # The first session: no stock has 50 closes yet, so no members and empty lists.
    first = table(con, f"trade_date = '{days[0]}'")
    assert first["n_members"].tolist() == [0, 0, 0] and first["members"].map(len).tolist() == [0, 0, 0]
    assert first["mean_pct_to_sma_50"].isna().all() and first["n_below_sma_50"].tolist() == [0, 0, 0]


def test_default_macros_take_the_ten_largest_and_exclude_nothing(hand_worked):
    con, days = hand_worked
    build(con, run_date=RUN, select=MODELS)
    got = table(con, f"trade_date = '{days[-1]}'").set_index("cohort")
    assert got.loc["top_n", "members"].tolist() == ["X1", "T2", "T1", "T3", "T4"]  # fewer than 10 with a cap and a 50-DMA
    assert got.loc["ai", "members"].tolist() == ["X1", "T2", "T1", "NOCAP"]
    assert got.loc["top_n", "mean_pct_to_sma_50"] == pytest.approx((0 - 19.6 + 24.5 + 0 + 98) / 5)
    assert len(table(con)) == 3 * 110  # every session, every cohort


def random_universe(n, seed):
    rng = np.random.default_rng(seed)
    days = DAYS[:n]
    tickers = [f"K{i:02d}" for i in range(14)]
    cohort = {t: ("ai", "non_ai", None)[i % 3] for i, t in enumerate(tickers)}
    shares = {t: float(rng.integers(1, 50)) * 1e8 for t in tickers if t != "K13"}  # K13: no market cap
    rows = []
    for i, t in enumerate(tickers):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        keep = rng.random(n) > (0.1 if i == 4 else 0.0)  # K04 misses days
        start = 30 if i == 7 else 0  # K07 lists late
        rows += [(t, d, float(c)) for j, (d, c, k) in enumerate(zip(days, close, keep)) if k and j >= start]
    return rows, cohort, shares


def pandas_cohorts(rows, cohort, shares, top_n=10):
    f = pd.DataFrame(rows, columns=["ticker", "trade_date", "close"]).sort_values(["ticker", "trade_date"])
    g = f.groupby("ticker")["close"]
    for n in (50, 100, 200):
        f[f"pct_{n}"] = 100 * (g.transform(lambda c: c.rolling(n, min_periods=n).mean()) / f["close"] - 1)
    f["cap"] = f["ticker"].map(shares) * f["close"]
    f["cohort"] = f["ticker"].map(cohort)
    f = f[f["pct_50"].notna()]
    out = []
    for day in sorted(set(r[1] for r in rows)):
        today = f[f["trade_date"] == day].sort_values(["cap", "ticker"], ascending=[False, True], na_position="last")
        groups = {
            "top_n": today[today["cap"].notna()].head(top_n),
            "ai": today[today["cohort"] == "ai"],
            "non_ai": today[today["cohort"] == "non_ai"],
        }
        for name, m in groups.items():
            out.append({
                "trade_date": pd.Timestamp(day), "cohort": name, "members": list(m["ticker"]), "n_members": len(m),
                "mean_pct_to_sma_50": m["pct_50"].mean(), "median_pct_to_sma_50": m["pct_50"].median(),
                "n_below_sma_50": int((m["pct_50"] > 0).sum()),
                "mean_pct_to_sma_100": m["pct_100"].mean(), "median_pct_to_sma_100": m["pct_100"].median(),
                "mean_pct_to_sma_200": m["pct_200"].mean(), "median_pct_to_sma_200": m["pct_200"].median(),
            })
    return pd.DataFrame(out).sort_values(["trade_date", "cohort"]).reset_index(drop=True)


def load_random(con, rows, cohort, shares):
    insert_universe(con, [(t, "stock", c) for t, c in cohort.items()])
    insert_shares(con, shares)
    insert_closes(con, rows)


def test_matches_an_independent_pandas_computation(mem):
    rows, cohort, shares = random_universe(130, seed=21)
    load_random(mem, rows, cohort, shares)
    build(mem, run_date=RUN, select=MODELS)
    got = table(mem)
    want = pandas_cohorts(rows, cohort, shares)
    assert len(got) == len(want) == 3 * 130
    assert [list(m) for m in got["members"]] == list(want["members"])
    for c in STAT_COLS:
        np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-9, equal_nan=True, err_msg=c)
    # The data exercises the rule: top_n is full (10 of 13 with a cap) and leaves some out.
    assert got[got.cohort == "top_n"]["n_members"].max() == 10
    assert got["mean_pct_to_sma_100"].notna().any()


def test_incremental_build_equals_a_full_build(mem):
    rows, cohort, shares = random_universe(130, seed=22)
    cut = DAYS[120]
    load_random(mem, [r for r in rows if r[1] < cut], cohort, shares)
    build(mem, run_date=RUN, select=MODELS)
    since = DAYS[117]
    mem.execute("update raw.prices_daily set close = close * 0.9 where trade_date = ? and ticker = 'K01'", [since])
    insert_closes(mem, [r for r in rows if r[1] >= cut])
    res = {r.relation: r for r in build(mem, run_date=RUN, since=since, select=MODELS)}
    csd = res["marts.cohort_sma_distance"]
    assert csd.mode == "incremental" and csd.rows_written == 3 * 13 < csd.rows
    incremental = table(mem)

    with built_in_full(mem, MODELS) as full:
        pd.testing.assert_frame_equal(incremental, table(full))
