"""The NYSE trading calendar, from exchange_calendars (holidays, early closes, one-off closures).

Every "which day is it" question in Bellwether goes through here, so the run date is never
guessed from the wall clock alone: functions take the moment or the date explicitly.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"
CALENDAR_START = "1970-01-02"
MARKET_TZ = "America/New_York"


@lru_cache(maxsize=1)
def nyse() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(EXCHANGE, start=CALENDAR_START)


def _ts(day: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(None).normalize()


def _check_bounds(day: pd.Timestamp) -> None:
    cal = nyse()
    if not (cal.first_session <= day <= cal.last_session):
        raise ValueError(
            f"{day.date()} is outside the NYSE calendar's range "
            f"({cal.first_session.date()} to {cal.last_session.date()})"
        )


def is_session(day: dt.date | str) -> bool:
    """True when the NYSE was open on `day`."""
    ts = _ts(day)
    _check_bounds(ts)
    return bool(nyse().is_session(ts))


def sessions(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """The NYSE sessions from start to end, both included."""
    s, e = _ts(start), _ts(end)
    if e < s:
        return []
    cal = nyse()
    s = max(s, cal.first_session)
    e = min(e, cal.last_session)
    if e < s:
        return []
    return [d.date() for d in cal.sessions_in_range(s, e)]


def session_close(day: dt.date | str) -> dt.datetime:
    """The UTC moment the NYSE closed on session `day` (13:00 ET on early-close days)."""
    ts = _ts(day)
    if not is_session(ts):
        raise ValueError(f"{ts.date()} is not an NYSE session")
    return nyse().session_close(ts).to_pydatetime()


def last_completed_session(now: dt.datetime) -> dt.date:
    """The latest session whose close is at or before `now` (an aware datetime).

    At 18:30 New York time on a trading day this is that day; on a weekend, a holiday or
    before the close it is the session before.
    """
    if now.tzinfo is None:
        raise ValueError("last_completed_session needs a timezone-aware datetime")
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    day = _ts(now_ts.tz_convert(MARKET_TZ).date())
    cal = nyse()
    if cal.is_session(day) and cal.session_close(day) <= now_ts:
        return day.date()
    return previous_session(day)


def previous_session(day: dt.date | str) -> dt.date:
    """The session strictly before `day` (which need not be a session itself)."""
    ts = _ts(day)
    cal = nyse()
    if cal.is_session(ts):
        return cal.previous_session(ts).date()
    return cal.date_to_session(ts, direction="previous").date()


def session_on_or_before(day: dt.date | str) -> dt.date:
    ts = _ts(day)
    _check_bounds(ts)
    return nyse().date_to_session(ts, direction="previous").date()


def sessions_back(day: dt.date | str, count: int) -> dt.date:
    """The session `count` sessions before the session on or before `day` (0 gives that one)."""
    if count < 0:
        raise ValueError("count must be >= 0")
    anchor = _ts(session_on_or_before(day))
    return nyse().session_offset(anchor, -count).date()


def parse_date(value: dt.date | str, what: str = "date") -> dt.date:
    """A date from an ISO string or date, with a clear error naming what was wrong."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date in YYYY-MM-DD form") from None
