"""marts.valuation_cohorts: aggregates and medians by hand on inline valuation rows, percentile
ranks against the cohort's own history, and an independent pandas roll-up of the sample market."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.sql.conftest import RUN, build_up_to, insert_universe, load_sample
from transforms.runner import build

D = dt.date
DAY = D(2025, 1, 27)

COLS = (
    "trade_date, cohort, n_members, members, market_cap, n_forward_pe, aggregate_forward_pe, median_forward_pe, "
    "n_trailing_pe, aggregate_trailing_pe, median_trailing_pe, n_price_to_sales, aggregate_price_to_sales, "
    "median_price_to_sales, ai_to_non_ai_price_to_sales, aggregate_forward_pe_pct_rank, median_forward_pe_pct_rank, "
    "aggregate_trailing_pe_pct_rank, aggregate_price_to_sales_pct_rank, median_price_to_sales_pct_rank, "
    "ai_to_non_ai_price_to_sales_pct_rank"
)
NAMES = [c.strip() for c in COLS.split(",")]
UNIVERSE = ("ticker", "cohort", "role")  # the column order of the inline universe rows below


def given_valuations(con, rows):
    """marts.valuation_multiples as inline rows: (ticker, trade_date, market_cap, forward_pe, trailing_pe, price_to_sales_ttm)."""
    con.execute(
        "create table marts.valuation_multiples (ticker varchar, trade_date date, market_cap double, "
        "forward_pe double, trailing_pe double, price_to_sales_ttm double)"
    )
    con.executemany("insert into marts.valuation_multiples values (?, ?, ?, ?, ?, ?)", rows)
    build(con, run_date=RUN, select=["stg_universe", "valuation_cohort_multiples", "valuation_cohorts"])


def cohorts(con):
    got = con.execute(f"select {COLS} from marts.valuation_cohorts order by trade_date, cohort").fetchall()
    return {(r[0], r[1]): dict(zip(NAMES, r)) for r in got}


def test_aggregates_and_medians_by_hand(mem):
    insert_universe(
        mem,
        [("A", "ai", "stock"), ("B", "ai", "stock"), ("C", "non_ai", "stock"), ("U", None, "stock"), ("SPY", None, "index_proxy")],
        UNIVERSE,
    )
    given_valuations(
        mem,
        [
            ("A", DAY, 1000.0, 20.0, 25.0, 10.0),
            ("B", DAY, 3000.0, 30.0, None, 5.0),  # a trailing loss: no trailing P/E
            ("C", DAY, 2000.0, 10.0, 12.0, 2.0),
            ("U", DAY, 500.0, None, 15.0, 1.0),  # no cohort: only in 'all'
            ("SPY", DAY, 9e12, 25.0, 25.0, 3.0),  # a fund: in no cohort
            ("ZZZ", DAY, 7e12, 5.0, 5.0, 0.5),  # not in the universe: in no cohort
        ],
    )
    got = cohorts(mem)
    assert set(got) == {(DAY, "ai"), (DAY, "non_ai"), (DAY, "all")}
    ai, non_ai, every = got[(DAY, "ai")], got[(DAY, "non_ai")], got[(DAY, "all")]
    assert (ai["n_members"], ai["members"], ai["market_cap"]) == (2, ["B", "A"], 4000.0)
    # Forward earnings: A 1000 / 20 = 50, B 3000 / 30 = 100.
    assert ai["aggregate_forward_pe"] == pytest.approx(4000 / 150)
    assert ai["median_forward_pe"] == pytest.approx(25.0)
    assert ai["n_trailing_pe"] == 1
    assert ai["aggregate_trailing_pe"] == pytest.approx(25.0)  # B has no trailing P/E: out of both sums
    assert ai["median_price_to_sales"] == pytest.approx(7.5)
    assert ai["aggregate_price_to_sales"] == pytest.approx(4000 / (1000 / 10 + 3000 / 5))
    assert non_ai["n_members"] == 1 and non_ai["aggregate_forward_pe"] == pytest.approx(10.0)
    assert non_ai["median_price_to_sales"] == pytest.approx(2.0)
    assert (every["n_members"], every["members"]) == (4, ["B", "C", "A", "U"])
    assert every["n_forward_pe"] == 3
    assert every["aggregate_forward_pe"] == pytest.approx(6000 / (50 + 100 + 200))
    assert every["median_forward_pe"] == pytest.approx(20.0)
    assert every["aggregate_trailing_pe"] == pytest.approx((1000 + 2000 + 500) / (1000 / 25 + 2000 / 12 + 500 / 15))
    assert every["median_trailing_pe"] == pytest.approx(15.0)
    assert every["median_price_to_sales"] == pytest.approx((5 + 2) / 2)
    assert every["aggregate_price_to_sales"] == pytest.approx(6500 / (100 + 600 + 1000 + 500))
    # The AI premium, on every row of the day: median P/S 7.5 against 2.
    assert [r["ai_to_non_ai_price_to_sales"] for r in (ai, non_ai, every)] == [pytest.approx(3.75)] * 3


def test_a_cohort_without_members_that_day_has_no_row_and_no_ratio(mem):
    insert_universe(mem, [("A", "ai", "stock"), ("C", "non_ai", "stock")], UNIVERSE)
    given_valuations(mem, [("A", DAY, 1000.0, 20.0, 25.0, 10.0)])
    got = cohorts(mem)
    assert set(got) == {(DAY, "ai"), (DAY, "all")}
    assert got[(DAY, "ai")]["ai_to_non_ai_price_to_sales"] is None


def expanding_rank(values):
    """Independently: the share of the values so far that are <= today's, once there are 20."""
    s = pd.Series(values, dtype=float)
    out = []
    for i, v in enumerate(s):
        seen = s[: i + 1].dropna()
        out.append(np.nan if np.isnan(v) or len(seen) < 20 else 100 * (seen <= v).mean())
    return np.array(out)


def ranked_history(seed, n):
    """n business days of an 'ai' stock A and a 'non_ai' stock C: A's forward P/E (NaN twice),
    both P/S (rounded: ties happen), as valuation rows."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-11-01", periods=n).date
    ai_ps = np.round(rng.uniform(5, 15, n), 1)
    non_ai_ps = np.round(rng.uniform(1, 4, n), 1)
    ai_pe = np.round(rng.uniform(20, 40, n), 0)
    ai_pe[[0, 7]] = np.nan  # no forward P/E those days: not observations
    rows = []
    for i, d in enumerate(days):
        rows.append(("A", d, 1000.0, None if np.isnan(ai_pe[i]) else float(ai_pe[i]), None, float(ai_ps[i])))
        rows.append(("C", d, 1000.0, 15.0, 15.0, float(non_ai_ps[i])))
    return days, rows, ai_pe, ai_ps, non_ai_ps


def ai_ranks(con):
    return pd.DataFrame(
        con.execute(
            "select trade_date, aggregate_forward_pe_pct_rank, median_price_to_sales_pct_rank, "
            "ai_to_non_ai_price_to_sales, ai_to_non_ai_price_to_sales_pct_rank "
            "from marts.valuation_cohorts where cohort = 'ai' order by trade_date"
        ).fetchall(),
        columns=["trade_date", "pe_rank", "ps_rank", "ratio", "ratio_rank"],
    )


def test_percentile_ranks_against_the_cohort_own_history(mem):
    days, rows, ai_pe, ai_ps, non_ai_ps = ranked_history(seed=11, n=35)
    insert_universe(mem, [("A", "ai", "stock"), ("C", "non_ai", "stock")], UNIVERSE)
    given_valuations(mem, rows)
    got = ai_ranks(mem)
    ratio = ai_ps / non_ai_ps
    np.testing.assert_allclose(got["ratio"].astype(float), ratio, rtol=1e-12)
    np.testing.assert_allclose(got["pe_rank"].astype(float), expanding_rank(ai_pe), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["ps_rank"].astype(float), expanding_rank(ai_ps), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["ratio_rank"].astype(float), expanding_rank(ratio), rtol=1e-12, equal_nan=True)
    assert got["pe_rank"].notna().sum() == 35 - 2 - 19
    # The 'all' cohort ranks the same ratio against its own rows: the same here, as both exist daily.
    all_ranks = [r[0] for r in mem.execute(
        "select ai_to_non_ai_price_to_sales_pct_rank from marts.valuation_cohorts where cohort = 'all' order by trade_date"
    ).fetchall()]
    np.testing.assert_allclose(np.array(all_ranks, dtype=float), expanding_rank(ratio), rtol=1e-12, equal_nan=True)


def test_an_incremental_build_ranks_new_days_against_the_days_it_keeps(mem):
    """A night rebuilds the cohorts from its earliest change only; the days it writes are ranked
    against every earlier day it kept, exactly as a full build ranks them."""
    days, rows, ai_pe, ai_ps, non_ai_ps = ranked_history(seed=12, n=45)
    insert_universe(mem, [("A", "ai", "stock"), ("C", "non_ai", "stock")], UNIVERSE)
    cut = days[30]
    given_valuations(mem, [r for r in rows if r[1] < cut])
    # Later nights: the rest arrives, and A's P/S on the day before the cut is restated upwards.
    restated = days[29]
    ai_ps[29] = 14.9
    mem.execute("update marts.valuation_multiples set price_to_sales_ttm = 14.9 where ticker = 'A' and trade_date = ?", [restated])
    mem.executemany("insert into marts.valuation_multiples values (?, ?, ?, ?, ?, ?)", [r for r in rows if r[1] >= cut])
    results = build(mem, run_date=RUN, since=restated, select=["stg_universe", "valuation_cohort_multiples", "valuation_cohorts"])
    result = next(r for r in results if r.relation == "marts.valuation_cohorts")
    assert result.mode == "incremental" and result.rows_written == 3 * (45 - 29) and result.rows == 3 * 45
    got = ai_ranks(mem)
    ratio = ai_ps / non_ai_ps
    np.testing.assert_allclose(got["ps_rank"].astype(float), expanding_rank(ai_ps), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["pe_rank"].astype(float), expanding_rank(ai_pe), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["ratio_rank"].astype(float), expanding_rank(ratio), rtol=1e-12, equal_nan=True)
    assert got.loc[got["trade_date"] >= restated, "ps_rank"].notna().all()
    # And a full build of the same rows gives the same table, ranks to the last bit.
    incremental = mem.execute(f"select {COLS} from marts.valuation_cohorts order by trade_date, cohort").df()
    build(mem, run_date=RUN, full_refresh=True, select=["stg_universe", "valuation_cohort_multiples", "valuation_cohorts"])
    full = mem.execute(f"select {COLS} from marts.valuation_cohorts order by trade_date, cohort").df()
    pd.testing.assert_frame_equal(incremental, full, check_exact=True)


def test_sample_market_rolled_up_independently(mem):
    """Build the whole chain on the sample market and redo the roll-up in pandas."""
    sample = load_sample(mem, None, D(2024, 10, 1), D(2025, 1, 31), fundamentals_from=D(2023, 1, 1))
    build_up_to(mem, "valuation_cohorts")
    v = mem.execute("select ticker, trade_date, market_cap, forward_pe, trailing_pe, price_to_sales_ttm from marts.valuation_multiples").df()
    universe = sample.universe[sample.universe["role"] == "stock"][["ticker", "cohort"]]
    v = v.merge(universe, on="ticker")
    frames = [v[v["cohort"] == c].assign(cohort=c) for c in ("ai", "non_ai")] + [v.assign(cohort="all")]
    want = {}
    for (day, cohort), g in pd.concat(frames).groupby(["trade_date", "cohort"]):
        agg = {}
        for m in ("forward_pe", "trailing_pe", "price_to_sales_ttm"):
            h = g[g[m].notna()]
            agg[m] = h["market_cap"].sum() / (h["market_cap"] / h[m]).sum()
        want[(day.date(), cohort)] = (len(g), agg["forward_pe"], g["forward_pe"].median(), agg["trailing_pe"],
                                      g["price_to_sales_ttm"].median(), agg["price_to_sales_ttm"])
    got = {
        (r[0], r[1]): r[2:]
        for r in mem.execute(
            "select trade_date, cohort, n_members, aggregate_forward_pe, median_forward_pe, aggregate_trailing_pe, "
            "median_price_to_sales, aggregate_price_to_sales from marts.valuation_cohorts"
        ).fetchall()
    }
    assert set(got) == set(want) and len(got) == 3 * 84
    for key, w in want.items():
        assert got[key][0] == w[0]
        np.testing.assert_allclose(np.array(got[key][1:], dtype=float), np.array(w[1:], dtype=float), rtol=1e-12, err_msg=str(key))
    # The sample's AI names trade at a higher P/S than the rest.
    ai_premium = mem.execute(
        "select ai_to_non_ai_price_to_sales from marts.valuation_cohorts where cohort = 'ai' and trade_date = '2025-01-27'"
    ).fetchone()[0]
    ai_ps, non_ai_ps = (np.median(v[(v["cohort"] == c) & (v["trade_date"] == pd.Timestamp(DAY))]["price_to_sales_ttm"]) for c in ("ai", "non_ai"))
    assert ai_premium == pytest.approx(ai_ps / non_ai_ps) and ai_premium > 1
