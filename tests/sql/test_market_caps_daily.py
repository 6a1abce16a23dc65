"""marts.market_caps_daily and the split restatement in stg_fundamentals_quarterly, on inline
rows with hand-worked values."""

import datetime as dt

import pytest

from sources import calendar
from tests.sql.conftest import RUN, insert_fundamentals, insert_prices, insert_snapshots
from transforms.runner import build

D = dt.date
# The column order of the inline snapshot and filing rows below.
SNAPSHOTS = ("ticker", "snapshot_date", "market_cap", "shares_outstanding")
FILINGS = ("ticker", "period_end", "report_date", "diluted_shares", "diluted_eps")


def caps(con, ticker):
    return {
        r[0]: r[1:]
        for r in con.execute(
            "select trade_date, close, shares_outstanding, market_cap, shares_source, shares_as_of "
            "from marts.market_caps_daily where ticker = ? order by trade_date",
            [ticker],
        ).fetchall()
    }


def test_snapshot_market_cap_is_carried_by_the_price(mem):
    # GOOGL-like: the snapshot's market cap (all share classes) is not shares * price.
    days = calendar.sessions("2025-01-02", "2025-01-10")  # 2, 3, 6, 7, 8, 9 (closed for Carter), 10
    insert_prices(mem, [("G", d, 100.0 + i, 100.0 + i) for i, d in enumerate(days)])
    insert_snapshots(mem, [("G", D(2025, 1, 3), 2_000e9, 5.8e9)], SNAPSHOTS)
    build(mem, run_date=RUN)
    got = caps(mem, "G")
    assert D(2025, 1, 2) not in got  # before any snapshot and no filing: unknown, no row
    assert got[D(2025, 1, 3)] == pytest.approx((101.0, 2_000e9 / 101.0, 2_000e9, "snapshot", D(2025, 1, 3)))
    # Jan 7 closes at 103: 2,000bn * 103 / 101
    assert got[D(2025, 1, 7)][2] == pytest.approx(2_000e9 * 103 / 101)
    assert got[D(2025, 1, 7)][1] == pytest.approx(2_000e9 / 101)  # shares in force do not move with price


def test_weekend_snapshot_uses_the_last_close_before_it(mem):
    insert_prices(mem, [("W", D(2025, 1, 3), 50.0, 50.0), ("W", D(2025, 1, 6), 55.0, 55.0)])
    insert_snapshots(mem, [("W", D(2025, 1, 4), 500.0, 10.0)], SNAPSHOTS)  # a Saturday: Friday's close is 50
    build(mem, run_date=RUN)
    got = caps(mem, "W")
    assert got[D(2025, 1, 6)][2] == pytest.approx(500.0 * 55 / 50)
    assert D(2025, 1, 3) not in got


def test_stale_snapshot_falls_back_to_the_latest_public_filing(mem):
    days = calendar.sessions("2025-01-02", "2025-02-28")
    insert_prices(mem, [("S", d, 10.0, 10.0) for d in days])
    insert_snapshots(mem, [("S", D(2025, 1, 2), 1_000.0, 100.0)], SNAPSHOTS)
    insert_fundamentals(mem, [("S", D(2024, 12, 31), D(2025, 1, 30), 90.0, 1.0)], FILINGS)
    build(mem, run_date=RUN)
    got = caps(mem, "S")
    assert got[D(2025, 1, 10)][3:] == ("snapshot", D(2025, 1, 2))  # 8 days old
    assert got[D(2025, 1, 10)][2] == pytest.approx(1_000.0)
    assert D(2025, 1, 13) not in got  # 11 days old is past the 10-day limit, and no filing is public yet
    assert D(2025, 1, 29) not in got
    assert got[D(2025, 1, 30)][2:] == pytest.approx((900.0, "filing", D(2025, 1, 30)))  # 90 shares * $10


def test_split_jump_in_as_published_filings_is_restated(mem):
    # NVDA-style: shares as published, 2.49bn before the 10:1 split and 24.8bn after it.
    insert_fundamentals(
        mem,
        [
            ("N", D(2024, 1, 28), D(2024, 2, 21), 2.49e9, 4.93),
            ("N", D(2024, 4, 28), D(2024, 5, 22), 2.50e9, 5.98),
            ("N", D(2024, 7, 28), D(2024, 8, 28), 24.85e9, 0.67),
        ],
        FILINGS,
    )
    insert_prices(mem, [("N", D(2024, 3, 1), 82.0, 82.0), ("N", D(2024, 9, 3), 108.0, 108.0)])
    build(mem, run_date=RUN)
    stg = mem.execute(
        "select period_end, split_factor, diluted_shares_adjusted, diluted_eps_adjusted "
        "from staging.stg_fundamentals_quarterly where ticker = 'N' order by period_end"
    ).fetchall()
    assert [r[1] for r in stg] == [10.0, 10.0, 1.0]
    assert stg[0][2:] == pytest.approx((24.9e9, 0.493))
    got = caps(mem, "N")
    # March 2024, on the split-adjusted close of 82: 24.9bn shares, about $2.04tn.
    assert got[D(2024, 3, 1)] == pytest.approx((82.0, 24.9e9, 82.0 * 24.9e9, "filing", D(2024, 2, 21)))
    assert got[D(2024, 9, 3)][2] == pytest.approx(108.0 * 24.85e9)


def test_restated_source_has_no_jump_and_buybacks_are_not_splits(mem):
    insert_fundamentals(
        mem,
        [
            ("A", D(2024, 3, 31), D(2024, 5, 1), 15.5e9, 1.5),
            ("A", D(2024, 6, 30), D(2024, 8, 1), 15.3e9, 1.4),  # a 1.3% buyback
            ("A", D(2024, 9, 30), D(2024, 10, 31), 23.0e9, 1.0),  # x1.503: a 3:2 split
        ],
        FILINGS,
    )
    build(mem, run_date=RUN)
    factors = [r[0] for r in mem.execute("select split_factor from staging.stg_fundamentals_quarterly order by period_end").fetchall()]
    assert factors == [1.5, 1.5, 1.0]


def test_filing_counts_only_from_its_report_date(mem):
    insert_fundamentals(mem, [("R", D(2024, 9, 30), D(2024, 11, 5), 100.0, 1.0), ("R", D(2024, 12, 31), D(2025, 2, 5), 110.0, 1.0)], FILINGS)
    insert_prices(mem, [("R", d, 2.0, 2.0) for d in (D(2024, 11, 4), D(2024, 11, 5), D(2025, 2, 4), D(2025, 2, 5))])
    build(mem, run_date=RUN)
    got = caps(mem, "R")
    assert D(2024, 11, 4) not in got
    assert got[D(2024, 11, 5)][2] == pytest.approx(200.0)
    assert got[D(2025, 2, 4)][2] == pytest.approx(200.0)
    assert got[D(2025, 2, 5)][2] == pytest.approx(220.0)


def test_incremental_build_equals_full(mem):
    days = calendar.sessions("2025-01-02", "2025-03-31")
    insert_prices(mem, [("X", d, 10.0 + i % 7, 10.0 + i % 7) for i, d in enumerate(days)])
    insert_snapshots(mem, [("X", d, 1_000.0 + i, 100.0) for i, d in enumerate(days[::9])], SNAPSHOTS)
    insert_fundamentals(mem, [("X", D(2024, 12, 31), D(2025, 1, 20), 95.0, 1.0)], FILINGS)
    build(mem, run_date=RUN)
    full = mem.execute("select * from marts.market_caps_daily order by all").fetchall()
    mem.execute("delete from marts.market_caps_daily where trade_date >= '2025-02-10'")
    mem.execute("update marts.market_caps_daily set market_cap = -1 where trade_date >= '2025-02-03'")
    build(mem, run_date=RUN, since=D(2025, 2, 3))
    assert mem.execute("select * from marts.market_caps_daily order by all").fetchall() == full
