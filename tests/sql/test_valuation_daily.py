"""marts.valuation_daily on inline rows: multiples worked by hand, point in time, split bases,
staleness, percentile ranks against an independent pandas computation, and agreement with the
sample source's own multiples."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import (
    LOADED_AT, build_up_to, built_in_full, insert_fundamentals, insert_prices, insert_snapshots, insert_universe,
    load_sample, models_up_to,
)

D = dt.date

COLS = (
    "ticker, trade_date, close, market_cap, trailing_eps, trailing_pe, forward_eps, forward_pe, revenue_ttm, "
    "price_to_sales_ttm, trailing_pe_pct_rank, forward_pe_pct_rank, price_to_sales_pct_rank, "
    "fundamentals_period_end, forward_eps_as_of"
)
NAMES = [c.strip() for c in COLS.split(",")]
# The column order of the inline universe and snapshot rows below.
UNIVERSE = ("ticker", "cohort", "role")
SNAPSHOTS = ("ticker", "snapshot_date", "market_cap", "forward_eps", "forward_pe")


def quarterly(ticker, quarters, shares=1000.0):
    """quarters: (period_end, report_date, revenue, diluted_eps)."""
    return [(ticker, p, r, rev, None, eps, shares) for p, r, rev, eps in quarters]


def valuations(con, ticker):
    got = con.execute(
        f"select {COLS} from marts.valuation_daily where ticker = ? order by trade_date", [ticker]
    ).fetchall()
    return {r[1]: dict(zip(NAMES, r)) for r in got}


CLOSES = {
    D(2025, 1, 2): 38.0, D(2025, 1, 3): 39.0, D(2025, 1, 6): 40.0, D(2025, 1, 7): 41.0, D(2025, 1, 8): 42.0,
    D(2025, 1, 10): 44.0, D(2025, 1, 13): 45.0, D(2025, 1, 14): 46.0, D(2025, 1, 15): 50.0,
    D(2025, 1, 16): 48.0, D(2025, 1, 17): 47.0,
}
QUARTERS = [
    (D(2023, 12, 31), D(2024, 1, 25), 90.0, 0.9),
    (D(2024, 3, 31), D(2024, 4, 25), 100.0, 1.0),
    (D(2024, 6, 30), D(2024, 7, 25), 110.0, 1.1),
    (D(2024, 9, 30), D(2024, 10, 25), 120.0, 1.2),
    (D(2024, 12, 31), D(2025, 1, 15), 130.0, 1.3),
]


def load_example(con):
    insert_universe(con, [("X", "ai", "stock"), ("SPY", None, "index_proxy")], UNIVERSE)
    insert_prices(con, [(t, d, c, c) for t in ("X", "SPY") for d, c in CLOSES.items()])
    insert_fundamentals(con, quarterly("X", QUARTERS))
    # Yahoo-style snapshot on Jan 6: forward P/E 8 = close 40 / forward EPS 5.
    insert_snapshots(con, [("X", D(2025, 1, 6), 50_000.0, 5.0, 8.0), ("SPY", D(2025, 1, 6), 9e12, 30.0, 20.0)], SNAPSHOTS)


def test_multiples_by_hand(mem):
    load_example(mem)
    build_up_to(mem, "valuation_daily")
    got = valuations(mem, "X")
    assert valuations(mem, "SPY") == {}  # a fund, not a stock
    jan2, jan6, jan10 = got[D(2025, 1, 2)], got[D(2025, 1, 6)], got[D(2025, 1, 10)]
    # Jan 2: no snapshot yet. Market cap from the filing (1,000 shares x 38); the TTM is the four
    # quarters to 2024-09-30: EPS 0.9 + 1.0 + 1.1 + 1.2, revenue 90 + 100 + 110 + 120.
    assert jan2["market_cap"] == pytest.approx(38_000.0)
    assert jan2["trailing_eps"] == pytest.approx(4.2)
    assert jan2["trailing_pe"] == pytest.approx(38 / 4.2)
    assert jan2["revenue_ttm"] == pytest.approx(420.0)
    assert jan2["price_to_sales_ttm"] == pytest.approx(38_000 / 420)
    assert jan2["forward_eps"] is None and jan2["forward_pe"] is None and jan2["forward_eps_as_of"] is None
    assert jan2["fundamentals_period_end"] == D(2024, 9, 30)
    # Jan 6: the snapshot's market cap and forward EPS.
    assert jan6["market_cap"] == pytest.approx(50_000.0)
    assert jan6["forward_eps"] == pytest.approx(5.0)
    assert jan6["forward_pe"] == pytest.approx(8.0)
    assert jan6["price_to_sales_ttm"] == pytest.approx(50_000 / 420)
    assert jan6["forward_eps_as_of"] == D(2025, 1, 6)
    # Jan 10: the snapshot carried by the price (44 / 40).
    assert jan10["market_cap"] == pytest.approx(55_000.0)
    assert jan10["forward_pe"] == pytest.approx(44 / 5)
    assert jan10["trailing_pe"] == pytest.approx(44 / 4.2)
    # Jan 15: FY Q4 is reported that morning: EPS 1.0 + 1.1 + 1.2 + 1.3, revenue 460.
    jan14, jan15 = got[D(2025, 1, 14)], got[D(2025, 1, 15)]
    assert jan14["trailing_eps"] == pytest.approx(4.2)
    assert jan15["trailing_eps"] == pytest.approx(4.6)
    assert jan15["trailing_pe"] == pytest.approx(50 / 4.6)
    assert jan15["revenue_ttm"] == pytest.approx(460.0)
    assert jan15["price_to_sales_ttm"] == pytest.approx(50_000 * 50 / 40 / 460)
    assert jan15["fundamentals_period_end"] == D(2024, 12, 31)
    # Jan 16 is 10 days after the snapshot (still used); Jan 17 is 11 (not): no forward EPS, and the
    # market cap falls back to the filing.
    assert got[D(2025, 1, 16)]["forward_pe"] == pytest.approx(48 / 5)
    jan17 = got[D(2025, 1, 17)]
    assert jan17["forward_eps"] is None and jan17["forward_pe"] is None
    assert jan17["market_cap"] == pytest.approx(47_000.0)
    assert jan17["price_to_sales_ttm"] == pytest.approx(47_000 / 460)


def test_later_data_never_changes_an_earlier_row(mem):
    load_example(mem)
    build_up_to(mem, "valuation_daily")
    before = mem.execute("select * from marts.valuation_daily order by ticker, trade_date").fetchall()
    # The next night: a session, a snapshot and a restated quarter, all dated Jan 21.
    insert_prices(mem, [("X", D(2025, 1, 21), 46.0, 46.0)])
    insert_snapshots(mem, [("X", D(2025, 1, 21), 60_000.0, 6.0, 46 / 6)], SNAPSHOTS)
    insert_fundamentals(mem, quarterly("X", [(D(2024, 12, 31), D(2025, 1, 21), 150.0, 2.0)]))
    build_up_to(mem, "valuation_daily")
    after = mem.execute("select * from marts.valuation_daily order by ticker, trade_date").fetchall()
    assert after[:-1] == before
    assert dict(zip(NAMES, after[-1][: len(NAMES)]))["forward_pe"] == pytest.approx(46 / 6)


def test_forward_eps_is_put_on_the_split_basis_of_the_close(mem):
    # A 10:1 split on Monday 2024-06-10. The stored closes are split-adjusted (121 on June 6, when
    # the stock traded at 1,210).
    closes = {D(2024, 6, 5): 120.0, D(2024, 6, 6): 121.0, D(2024, 6, 7): 122.0, D(2024, 6, 10): 123.0, D(2024, 6, 11): 124.0}
    tickers = ("YAHOO", "RESTATED", "LOSS")
    insert_universe(mem, [(t, None, "stock") for t in tickers], UNIVERSE)
    insert_prices(mem, [(t, d, c, c) for t in tickers for d, c in closes.items()])
    mem.execute("update raw.prices_daily set split_ratio = 10 where trade_date = '2024-06-10'")
    insert_snapshots(
        mem,
        [
            # As Yahoo serves it that night: $30.25 a pre-split share, P/E 1,210 / 30.25 = 40.
            ("YAHOO", D(2024, 6, 6), 3e12, 30.25, 40.0),
            # A source that restates EPS to today's shares: $3.025, the same P/E.
            ("RESTATED", D(2024, 6, 6), 3e12, 3.025, 40.0),
            # A forward loss has no P/E: -$2 a pre-split share, then -$0.21 a post-split share.
            ("LOSS", D(2024, 6, 6), 1e9, -2.0, None),
            ("LOSS", D(2024, 6, 10), 1e9, -0.21, None),
        ],
        SNAPSHOTS,
    )
    build_up_to(mem, "valuation_daily")
    for ticker in ("YAHOO", "RESTATED"):
        got = valuations(mem, ticker)
        assert got[D(2024, 6, 6)]["forward_eps"] == pytest.approx(3.025), ticker
        assert got[D(2024, 6, 6)]["forward_pe"] == pytest.approx(40.0), ticker
        assert got[D(2024, 6, 11)]["forward_pe"] == pytest.approx(124 / 3.025), ticker
    loss = valuations(mem, "LOSS")
    assert loss[D(2024, 6, 7)]["forward_eps"] == pytest.approx(-0.2)
    assert loss[D(2024, 6, 7)]["forward_pe"] is None
    assert loss[D(2024, 6, 11)]["forward_eps"] == pytest.approx(-0.21)


def test_trailing_figures_need_four_quarters_and_positive_bases(mem):
    insert_universe(mem, [("GAP", None, "stock"), ("LOSS", None, "stock")], UNIVERSE)
    insert_prices(mem, [(t, D(2025, 1, 10), 20.0, 20.0) for t in ("GAP", "LOSS")])
    # GAP never reported the June quarter; LOSS lost $0.50 a share each quarter.
    gap = [q for q in QUARTERS if q[0] != D(2024, 6, 30)]
    loss = [(p, r, rev, -0.5) for p, r, rev, _ in QUARTERS]
    insert_fundamentals(mem, quarterly("GAP", gap) + quarterly("LOSS", loss))
    build_up_to(mem, "valuation_daily")
    g = valuations(mem, "GAP")[D(2025, 1, 10)]
    assert g["market_cap"] == pytest.approx(20_000.0)
    assert g["trailing_eps"] is None and g["trailing_pe"] is None
    assert g["revenue_ttm"] is None and g["price_to_sales_ttm"] is None
    lo = valuations(mem, "LOSS")[D(2025, 1, 10)]
    assert lo["trailing_eps"] == pytest.approx(-2.0)
    assert lo["trailing_pe"] is None  # a P/E on a loss means nothing
    assert lo["price_to_sales_ttm"] == pytest.approx(20_000 / 420)


def test_stale_fundamentals_are_not_used(mem):
    quarters = QUARTERS[:4]  # the latest quarter ended 2024-09-30
    last_ok = D(2024, 9, 30) + dt.timedelta(days=200)
    insert_universe(mem, [("OLD", None, "stock")], UNIVERSE)
    insert_prices(mem, [("OLD", d, 10.0, 10.0) for d in (last_ok, last_ok + dt.timedelta(days=1))])
    insert_fundamentals(mem, quarterly("OLD", quarters))
    build_up_to(mem, "valuation_daily")
    got = valuations(mem, "OLD")
    assert got[last_ok]["trailing_eps"] == pytest.approx(4.2)
    assert got[last_ok]["revenue_ttm"] == pytest.approx(420.0)
    late = got[last_ok + dt.timedelta(days=1)]
    assert late["market_cap"] == pytest.approx(10_000.0)  # shares in force still known
    assert late["trailing_eps"] is None and late["revenue_ttm"] is None and late["fundamentals_period_end"] is None


def tied_forward_pes(seed, n):
    """n business days of a stock R whose forward P/E is a whole number (ties happen), with three
    forward losses (no P/E, not an observation): (days, forward EPS per day)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2025-02-03", periods=n).date
    pe = np.round(rng.uniform(10, 30, len(days)), 0)
    eps = 100 / pe
    eps[[3, 11, 25]] = -1.0
    return days, eps


def insert_forward_pes(con, days, eps):
    insert_prices(con, [("R", d, 100.0, 100.0) for d in days])
    insert_snapshots(con, [("R", d, 1e9, float(e), float(100 / e) if e > 0 else None) for d, e in zip(days, eps)], SNAPSHOTS)


def expanding_ranks(eps):
    """Independently: the share of the P/Es so far that are <= today's, once there are 20 of them."""
    values = pd.Series(np.where(eps > 0, 100 / eps, np.nan))
    want = []
    for i, v in enumerate(values):
        seen = values[: i + 1].dropna()
        want.append(np.nan if np.isnan(v) or len(seen) < 20 else 100 * (seen <= v).mean())
    return np.array(want)


def forward_ranks(con):
    return pd.DataFrame(
        con.execute("select trade_date, forward_pe, forward_pe_pct_rank from marts.valuation_daily order by trade_date").fetchall(),
        columns=["trade_date", "forward_pe", "rank"],
    )


def test_percentile_ranks_against_the_stock_own_history(mem):
    days, eps = tied_forward_pes(seed=5, n=40)
    insert_universe(mem, [("R", None, "stock")], UNIVERSE)
    insert_forward_pes(mem, days, eps)
    build_up_to(mem, "valuation_daily")
    got = forward_ranks(mem)
    assert len(got) == len(days)
    np.testing.assert_allclose(got["rank"].astype(float).to_numpy(), expanding_ranks(eps), rtol=1e-12, equal_nan=True)
    assert got["rank"].notna().sum() == 40 - 3 - 19


@pytest.mark.parametrize("written", [12, 30], ids=["pair-by-pair", "sorted"])
def test_incremental_ranks_count_earlier_ties(mem, written):
    """The days an incremental build writes are ranked against the earlier days it keeps, ties
    included (an earlier P/E equal to today's counts as at or below it), whether it compares
    them pair by pair (a night: up to valuation_rank_pairs_max_days() days) or sorts them."""
    days, eps = tied_forward_pes(seed=6, n=40 + written)
    insert_universe(mem, [("R", None, "stock")], UNIVERSE)
    insert_forward_pes(mem, days[:40], eps[:40])
    build_up_to(mem, "valuation_daily")
    assert mem.execute("select valuation_rank_pairs_max_days()").fetchone()[0] == 20
    insert_forward_pes(mem, days[40:], eps[40:])
    result = next(r for r in build_up_to(mem, "valuation_daily", since=days[40]) if r.relation == "marts.valuation_daily")
    assert result.mode == "incremental" and result.rows_written == written
    got = forward_ranks(mem)
    pes = got["forward_pe"].dropna()
    assert pes[pes.index >= 40].isin(pes[pes.index < 40]).sum() >= written // 2  # the new days tie with earlier ones
    np.testing.assert_allclose(got["rank"].astype(float).to_numpy(), expanding_ranks(eps), rtol=1e-12, equal_nan=True)


def test_an_incremental_build_ranks_new_days_against_the_days_it_keeps(mem):
    """A night rebuilds valuation_daily from its earliest change only; the days it writes are
    ranked against the stock's earlier multiples it kept, exactly as a full build ranks them."""
    tickers = ["NVDA", "WMT", "AAPL", "JPM"]
    load_sample(mem, tickers, D(2024, 1, 2), D(2024, 10, 31), fundamentals_from=D(2022, 1, 1))
    build_up_to(mem, "valuation_daily")
    # Later nights: two more months arrive, and a snapshot inside the built range is restated.
    load_sample(mem, tickers, D(2024, 11, 1), D(2024, 12, 31), fundamentals_from=D(2024, 11, 1))
    restated = D(2024, 10, 15)
    assert mem.execute(
        "update raw.valuation_snapshots set forward_pe = forward_pe * 1.5 where snapshot_date = ?", [restated]
    ).fetchone()[0] == 4
    results = build_up_to(mem, "valuation_daily", since=restated)
    result = next(r for r in results if r.relation == "marts.valuation_daily")
    written = mem.execute("select count(*) from marts.valuation_daily where trade_date >= ?", [restated]).fetchone()[0]
    assert result.mode == "incremental" and result.rows_written == written == 4 * len(calendar.sessions(restated, D(2024, 12, 31)))
    assert result.rows == 4 * 252
    # The restated snapshot reached the rows written: its forward P/E is on the night's row.
    assert mem.execute(
        "select count(*) from marts.valuation_daily as v join raw.valuation_snapshots as s "
        "on v.ticker = s.ticker and v.trade_date = s.snapshot_date where s.snapshot_date = ? "
        "and abs(v.forward_pe / s.forward_pe - 1) < 1e-9", [restated],
    ).fetchone()[0] == 4
    query = "select * from marts.valuation_daily order by ticker, trade_date"
    incremental = mem.execute(query).df()
    assert incremental.loc[incremental["trade_date"] >= pd.Timestamp(restated), "forward_pe_pct_rank"].notna().all()
    with built_in_full(mem, models_up_to("valuation_daily")) as full:
        want = full.execute(query).df()
    ranks = ["trailing_pe_pct_rank", "forward_pe_pct_rank", "price_to_sales_pct_rank"]
    # Ranks are counts: equal to the last bit. The rest to rounding (market caps come from
    # windowed sums that add up in an order depending on where the build started).
    pd.testing.assert_frame_equal(incremental[ranks], want[ranks], check_exact=True)
    pd.testing.assert_frame_equal(incremental, want, check_exact=False, rtol=1e-12, atol=0)


def test_matches_the_sample_sources_own_multiples(mem):
    """The sample market computes its snapshots' P/Es and P/S in numpy from its own quarters:
    on every snapshot day they must equal valuation_daily's (NVDA and WMT split in 2024)."""
    load_sample(mem, ["NVDA", "WMT", "AAPL", "JPM"], D(2024, 1, 2), D(2024, 12, 31), fundamentals_from=D(2022, 1, 1))
    build_up_to(mem, "valuation_daily")
    got = mem.execute(
        """
        select count(*), count(s.snapshot_date),
               max(abs(v.trailing_pe / s.trailing_pe - 1)), max(abs(v.forward_pe / s.forward_pe - 1)),
               max(abs(v.price_to_sales_ttm / s.price_to_sales_ttm - 1)),
               count(v.trailing_pe) = count(s.trailing_pe), count(v.forward_pe) = count(s.forward_pe)
        from marts.valuation_daily as v
        left join raw.valuation_snapshots as s on v.ticker = s.ticker and v.trade_date = s.snapshot_date
        """
    ).fetchone()
    n, matched, trailing_err, forward_err, sales_err, same_trailing, same_forward = got
    assert n == matched == 4 * 252
    assert max(trailing_err, forward_err, sales_err) < 1e-9
    assert same_trailing and same_forward


def test_real_nvda_through_the_deepseek_selloff(mem, real_data, tmp_path):
    """The real files: NVIDIA's as-traded closes (AizG237) and its own quarterly releases, which
    publish shares and EPS as reported (pre-split before FY2025Q2). No snapshots: the market cap
    comes from the filings."""
    from sources.files import FilesSource
    from warehouse.load import load_batch

    prices = real_data / "prices" / "AizG237_stock-analysis" / "NVDA.csv"
    tidy = real_data / "fundamentals" / "NVDA_quarterly_tidy.csv"
    if not (prices.is_file() and tidy.is_file()):
        pytest.skip("the real NVDA price or fundamentals file is absent")
    for sub, path in (("prices", prices), ("fundamentals", tidy)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / path.name).symlink_to(path)
    source = FilesSource(tmp_path)
    load_batch(mem, source.prices(["NVDA"], D(2024, 8, 20), D(2025, 3, 31)), source="files", run_id="real", loaded_at=LOADED_AT)
    load_batch(mem, source.fundamentals(["NVDA"], D(2019, 1, 1), D(2026, 12, 31)), source="files", run_id="real", loaded_at=LOADED_AT)
    insert_universe(mem, [("NVDA", "ai", "stock")], UNIVERSE)
    build_up_to(mem, "valuation_daily")
    got = valuations(mem, "NVDA")
    fri, mon = got[D(2025, 1, 24)], got[D(2025, 1, 27)]
    # Known on Jan 24: FY2024Q4..FY2025Q3, EPS 4.93 / 10 + 5.98 / 10 (pre-split) + 0.67 + 0.78, and
    # revenue 22,103 + 26,044 + 30,040 + 35,082 ($m); shares 24,774m from the FY2025Q3 release.
    ttm_eps = 0.493 + 0.598 + 0.67 + 0.78
    assert fri["close"] == pytest.approx(142.62) and mon["close"] == pytest.approx(118.42)
    assert fri["trailing_eps"] == pytest.approx(ttm_eps)
    assert fri["trailing_pe"] == pytest.approx(142.62 / ttm_eps)  # about 56
    assert mon["trailing_pe"] == pytest.approx(118.42 / ttm_eps)  # about 47 after the 17% fall
    assert fri["revenue_ttm"] == pytest.approx(113_269e6)
    assert fri["market_cap"] == pytest.approx(24_774e6 * 142.62)  # $3.53tn
    assert fri["price_to_sales_ttm"] == pytest.approx(24_774e6 * 142.62 / 113_269e6)  # about 31
    # FY2025Q4 (released 2025-02-26) moves the trailing EPS to FY2025's $2.94.
    assert got[D(2025, 2, 26)]["trailing_eps"] == pytest.approx(2.938)
    assert got[D(2025, 2, 25)]["trailing_eps"] == pytest.approx(ttm_eps)
