"""Backfill planning: chunks over sessions, what counts as already loaded, the plan's statuses."""

import datetime as dt

import pytest

from sources import calendar
from transforms import plan
from warehouse import audit

D = dt.date


@pytest.mark.parametrize("chunk", ["week", "month", "quarter", "year", 1, 7, "20"])
def test_chunks_tile_the_range_and_hold_every_session_once(chunk):
    start, end = D(2024, 12, 14), D(2025, 4, 21)  # a Saturday to a Monday, across year, quarter, the Jan-9 closure
    windows = plan.chunk_windows(start, end, chunk)
    assert windows[0][0] == start and windows[-1][1] == end
    for (_, hi, _), (lo, _, _) in zip(windows, windows[1:]):
        assert lo == hi + dt.timedelta(days=1)  # no gap, no overlap
    assert sum(n for *_, n in windows) == len(calendar.sessions(start, end))
    for lo, hi, n in windows:
        assert n == len(calendar.sessions(lo, hi)) >= 1


def test_month_chunks_follow_the_calendar_and_skip_closures():
    windows = plan.chunk_windows(D(2025, 1, 1), D(2025, 3, 5), "month")
    assert windows == [(D(2025, 1, 1), D(2025, 2, 2), 20), (D(2025, 2, 3), D(2025, 3, 2), 19), (D(2025, 3, 3), D(2025, 3, 5), 3)]
    assert [n for *_, n in plan.chunk_windows(D(2025, 1, 2), D(2025, 1, 31), 5)] == [5, 5, 5, 5]


@pytest.mark.parametrize("bad", ["fortnight", "0", "-3", "", "1.5"])
def test_a_bad_chunk_size_is_refused(bad):
    with pytest.raises(ValueError, match="is not one of week, month, quarter, year or a positive number of sessions"):
        plan.parse_chunk(bad)


def test_coverage_needs_the_whole_window_and_every_ticker():
    records = [
        {"dataset": "prices_daily", "start": D(2025, 1, 1), "end": D(2025, 1, 31), "tickers": {"SPY", "NVDA"}},
        {"dataset": "prices_daily", "start": D(2025, 1, 1), "end": D(2025, 2, 28), "tickers": {"MSFT"}},
        {"dataset": "putcall_daily", "start": D(2025, 1, 1), "end": D(2025, 1, 31), "tickers": None},
    ]
    assert plan.is_covered(records, "prices_daily", D(2025, 1, 6), D(2025, 1, 10), ("SPY", "MSFT"))
    assert not plan.is_covered(records, "prices_daily", D(2025, 1, 6), D(2025, 1, 10), ("SPY", "AAPL"))
    assert not plan.is_covered(records, "prices_daily", D(2025, 1, 27), D(2025, 2, 7), ("SPY",))  # runs past the record
    assert plan.is_covered(records, "prices_daily", D(2025, 2, 3), D(2025, 2, 7), ("MSFT",))
    assert plan.is_covered(records, "putcall_daily", D(2025, 1, 2), D(2025, 1, 31), None)
    assert not plan.is_covered(records, "option_quotes", D(2025, 1, 2), D(2025, 1, 3), ("SPY",))


def test_a_chunk_loaded_for_some_tickers_owes_only_the_others():
    records = [
        {"dataset": "prices_daily", "start": D(2025, 1, 1), "end": D(2025, 1, 31), "tickers": {"SPY", "NVDA"}},
        {"dataset": "prices_daily", "start": D(2025, 1, 6), "end": D(2025, 1, 10), "tickers": {"MSFT"}},
    ]
    assert plan.owed_tickers(records, "prices_daily", D(2025, 1, 6), D(2025, 1, 10), ("SPY", "MSFT", "AAPL", "KO")) == ("AAPL", "KO")
    assert plan.owed_tickers(records, "prices_daily", D(2025, 1, 13), D(2025, 1, 17), ("SPY", "MSFT")) == ("MSFT",)
    assert plan.owed_tickers(records, "prices_daily", D(2025, 1, 6), D(2025, 1, 10), ("SPY", "MSFT")) == ()
    assert plan.owed_tickers(records, "putcall_daily", D(2025, 1, 6), D(2025, 1, 10), None) is None


def _record(con, dataset, start, end, tickers, source_ref="sample"):
    audit.record_chunk(con, run_id="r1", dataset=dataset, source_ref=source_ref, start=start, end=end, tickers=tickers,
                       delivered=1, inserted=1, updated=0, unchanged=0, rejected=0, loaded_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC))


def test_the_plan_marks_done_refused_and_to_load_chunks(con):
    _record(con, "prices_daily", D(2025, 1, 2), D(2025, 1, 31), ["SPY", "NVDA"])
    _record(con, "prices_daily", D(2025, 2, 3), D(2025, 2, 28), ["SPY", "NVDA"], source_ref="files:/elsewhere")
    con.execute(
        "insert into raw.prices_daily (ticker, trade_date, close, adj_close, source, run_id, loaded_at) "
        "select 'SPY', d, 1, 1, 'sample', 'r1', now() from unnest(?::date[]) as t(d)",
        [calendar.sessions(D(2025, 1, 2), D(2025, 1, 31))],
    )
    chunks = plan.plan_backfill(
        con, start=D(2025, 1, 1), end=D(2025, 2, 28), datasets=("prices_daily", "option_quotes"), tickers=("SPY", "NVDA"),
        chunk="month", source_ref="sample", refused={"option_quotes": "Yahoo serves it only as of now"},
    )
    got = [(c.dataset, c.start, c.end, c.status, c.rows_present) for c in chunks]
    assert got == [
        # Jan 1 is a holiday: the recorded Jan 2..31 window holds every session of the chunk.
        ("prices_daily", D(2025, 1, 1), D(2025, 2, 2), plan.DONE, 20),
        # February was loaded from another source: that does not count.
        ("prices_daily", D(2025, 2, 3), D(2025, 2, 28), plan.TODO, 0),
        ("option_quotes", D(2025, 1, 1), D(2025, 2, 2), plan.REFUSED, 0),
        ("option_quotes", D(2025, 2, 3), D(2025, 2, 28), plan.REFUSED, 0),
    ]
    # A backfill whose NVDA failed in February recorded SPY alone: that chunk owes NVDA only.
    _record(con, "prices_daily", D(2025, 2, 3), D(2025, 2, 28), ["SPY"])
    resumed = plan.plan_backfill(
        con, start=D(2025, 1, 1), end=D(2025, 2, 28), datasets=("prices_daily",), tickers=("SPY", "NVDA"),
        chunk="month", source_ref="sample",
    )
    assert [(c.status, c.tickers, c.reason) for c in resumed] == [
        (plan.DONE, ("SPY", "NVDA"), "loaded by an earlier backfill from this source"),
        (plan.TODO, ("NVDA",), "1 of 2 ticker(s) still owed: an earlier backfill loaded the others"),
    ]
    forced = plan.plan_backfill(
        con, start=D(2025, 1, 1), end=D(2025, 2, 28), datasets=("prices_daily",), tickers=("SPY", "NVDA"),
        chunk="month", source_ref="sample", force=True,
    )
    assert [c.status for c in forced] == [plan.TODO, plan.TODO]
    # Without a warehouse at all, everything is to load.
    fresh = plan.plan_backfill(None, start=D(2025, 1, 1), end=D(2025, 1, 31), datasets=("putcall_daily",), tickers=("SPY",),
                               chunk="week", source_ref="sample")
    assert {c.status for c in fresh} == {plan.TODO} and all(c.tickers is None for c in fresh)


def test_owed_builds_are_tracked_until_a_build_covers_them(con):
    assert audit.unbuilt_since(con) is None
    _record(con, "prices_daily", D(2024, 6, 3), D(2024, 6, 28), ["SPY"])
    _record(con, "putcall_daily", D(2024, 5, 1), D(2024, 5, 31), None)
    assert audit.unbuilt_since(con) == D(2024, 5, 1)
    assert audit.mark_built(con, loaded_before=dt.datetime(2025, 3, 2, tzinfo=dt.UTC), at=dt.datetime(2025, 3, 2, tzinfo=dt.UTC)) == 2
    assert audit.unbuilt_since(con) is None


def test_a_night_builds_from_itself_or_the_earliest_row_its_loads_changed():
    from transforms.plan import build_since

    night = dt.date(2026, 1, 2)
    # The look-back came back unchanged (or a fund's empty fundamentals history): just the night.
    assert build_since(None, night) == night
    # A price restated inside the look-back, or a new ticker's history years back: from there.
    assert build_since(dt.date(2025, 12, 29), night) == dt.date(2025, 12, 29)
    assert build_since(dt.date(2023, 1, 3), night) == dt.date(2023, 1, 3)
    assert build_since(dt.date(2026, 1, 5), night) == night

