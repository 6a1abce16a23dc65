"""The Yahoo source against the real service: a handful of requests, for users with a network.

Deselected by default (pyproject addopts `-m 'not live'`); run with
`.venv/bin/python -m pytest -m live tests/live/test_yahoo_live.py`.
"""

import datetime as dt

import pytest

from sources import calendar
from sources.contract import FAILED, OK
from sources.retry import RetryPolicy
from sources.yahoo import YahooSource

pytestmark = [pytest.mark.live, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]


@pytest.fixture
def source(yf_isolated):
    return YahooSource(policy=RetryPolicy(max_attempts=3, base_delay_s=2.0), max_workers=2)


@pytest.fixture
def last_session():
    return calendar.last_completed_session(dt.datetime.now(dt.UTC))


def test_prices_of_the_last_week(source, last_session):
    start = calendar.sessions_back(last_session, 4)
    batch = source.prices(["SPY", "ZZZZQX"], start, last_session)

    spy = batch.outcomes.set_index("ticker").loc["SPY"]
    assert spy.status == OK and spy.rows == 5, batch.outcomes
    assert [d.date() for d in batch.frame["trade_date"]] == calendar.sessions(start, last_session)
    assert (batch.frame["close"] > 0).all() and (batch.frame["adj_close"] > 0).all()
    unknown = batch.outcomes.set_index("ticker").loc["ZZZZQX"]
    assert unknown.status == FAILED and "unknown or delisted" in unknown.reason


def test_valuation_snapshot_and_fundamentals(source, last_session):
    valuation = source.valuation_snapshots(["NVDA"], last_session, last_session)
    if valuation.outcomes.empty:
        pytest.skip(valuation.notes[0])  # the market is open: no snapshot now
    v = valuation.frame.iloc[0]
    assert v.market_cap > 1e11 and v.sector == "Technology"

    fundamentals = source.fundamentals(["NVDA"], last_session - dt.timedelta(days=400), last_session)
    assert fundamentals.outcomes.iloc[0].status == OK, fundamentals.outcomes
    assert (fundamentals.frame["revenue"] > 0).all()
    assert (fundamentals.frame["report_date"] > fundamentals.frame["period_end"]).all()
