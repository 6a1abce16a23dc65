import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sources import calendar

NY = ZoneInfo("America/New_York")


def at(y, m, d, hh, mm):
    return dt.datetime(y, m, d, hh, mm, tzinfo=NY)


def test_one_off_closure_and_holidays():
    assert not calendar.is_session("2025-01-09")  # national day of mourning (President Carter)
    assert not calendar.is_session("2025-06-19")  # Juneteenth
    assert not calendar.is_session("2024-11-28")  # Thanksgiving
    assert calendar.is_session("2025-01-27")


def test_sessions_skip_closures():
    days = calendar.sessions("2025-01-06", "2025-01-13")
    assert days == [dt.date(2025, 1, d) for d in (6, 7, 8, 10, 13)]
    assert calendar.sessions("2025-01-10", "2025-01-06") == []


def test_early_close_time():
    # The day after Thanksgiving closes at 13:00 New York time.
    assert calendar.session_close("2024-11-29") == dt.datetime(2024, 11, 29, 18, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "now, expected",
    [
        (at(2025, 1, 27, 18, 30), dt.date(2025, 1, 27)),  # after the close: that day
        (at(2025, 1, 27, 15, 0), dt.date(2025, 1, 24)),  # before the close: the Friday before
        (at(2025, 1, 25, 12, 0), dt.date(2025, 1, 24)),  # Saturday
        (at(2025, 1, 9, 20, 0), dt.date(2025, 1, 8)),  # the 2025-01-09 closure
        (at(2024, 11, 29, 13, 30), dt.date(2024, 11, 29)),  # after an early close
        (at(2024, 11, 29, 12, 30), dt.date(2024, 11, 27)),  # before it; Thanksgiving skipped
    ],
)
def test_last_completed_session(now, expected):
    assert calendar.last_completed_session(now) == expected


def test_last_completed_session_needs_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.last_completed_session(dt.datetime(2025, 1, 27, 20, 0))


def test_sessions_back():
    assert calendar.sessions_back("2025-01-10", 1) == dt.date(2025, 1, 8)
    assert calendar.sessions_back("2025-01-11", 0) == dt.date(2025, 1, 10)  # Saturday -> Friday
    assert calendar.previous_session("2025-01-10") == dt.date(2025, 1, 8)


def test_parse_date_names_the_problem():
    with pytest.raises(ValueError, match="--date '2025-13-01' is not a date"):
        calendar.parse_date("2025-13-01", "--date")
