"""The fake Yahoo market (tests/fakes/market.py) read through yfinance's own parsers and the
Yahoo source: what comes out is the sample market it was generated from, and its latency,
rate limits, timeouts, delisted and broken tickers behave as documented.

Expected values come from the sample market directly (`SampleSource`), never from the fake's
bodies or the adapter's output.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sources import calendar
from sources.base import load_universe
from sources.contract import EMPTY, FAILED, OK
from sources.retry import RetryPolicy
from sources.sample import SampleSource
from sources.yahoo import YahooSource
from tests.fakes.market import DATA_ROUTES, FakeMarket, pick_failing, request_key
from tests.fakes.yahoo import FakeYahooSession

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # yfinance's own inplace calls

TODAY = dt.date(2025, 1, 28)
AFTER_CLOSE = dt.datetime(2025, 1, 28, 23, 0, tzinfo=dt.UTC)   # 18:00 New York
JAN_21 = dt.date(2025, 1, 21)
NAMED = ["SPY", "^VIX", "NVDA", "KO"]


def sample() -> SampleSource:
    universe = load_universe()
    universe = pd.concat([universe[universe["ticker"].isin(NAMED)], SampleSource.synthetic_universe(2)], ignore_index=True)
    return SampleSource(universe=universe)


@pytest.fixture
def market(yf_isolated) -> FakeMarket:
    return FakeMarket(sample(), today=TODAY, delisted={"SYN002"}, broken={"SYN001"})


def source_for(market, waits, **kwargs) -> tuple[YahooSource, FakeYahooSession]:
    session = FakeYahooSession(market=market)
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=30.0)
    return YahooSource(session=session, policy=policy, sleep=waits.append, now=lambda: AFTER_CLOSE, **kwargs), session


def outcome(batch, ticker):
    rows = batch.outcomes[batch.outcomes["ticker"] == ticker]
    assert len(rows) == 1, batch.outcomes
    return rows.iloc[0]


def test_prices_come_through_yfinance_as_the_sample_market_has_them(market):
    source, _ = source_for(market, [])
    batch = source.prices(["SPY", "^VIX", "NVDA", "KO"], JAN_21, TODAY)
    want = sample().prices(["SPY", "^VIX", "NVDA", "KO"], JAN_21, TODAY).frame

    assert list(batch.outcomes["status"]) == [OK] * 4
    got = batch.frame.merge(want, on=["ticker", "trade_date"], suffixes=("", "_want"), how="outer", indicator=True)
    assert (got["_merge"] == "both").all() and len(got) == 4 * len(calendar.sessions(JAN_21, TODAY))
    # Prices below 1,000 with four decimals survive Yahoo's float32 exactly; adjusted closes
    # (six decimals) keep float32's precision only.
    for c in ("open", "high", "low", "close", "dividend", "split_ratio"):
        assert got[c].tolist() == got[f"{c}_want"].tolist(), c
    assert np.allclose(got["adj_close"], got["adj_close_want"], rtol=1e-6, atol=0)
    assert got["volume"].astype("float64").tolist() == got["volume_want"].astype("float64").fillna(0).tolist()


def test_every_option_expiry_is_served_with_the_sample_markets_contracts(market):
    source, session = source_for(market, [])
    batch = source.option_quotes(["NVDA", "SPY", "KO"], TODAY, TODAY)
    want = sample().option_quotes(["NVDA", "SPY", "KO"], TODAY, TODAY).frame

    assert list(batch.outcomes["status"]) == [OK] * 3
    assert batch.frame.groupby("ticker")["expiration_date"].nunique().to_dict() == {"KO": 7, "NVDA": 7, "SPY": 7}
    key = ["contract_symbol"]
    got = batch.frame.merge(want, on=key, suffixes=("", "_want"), how="outer", indicator=True)
    assert (got["_merge"] == "both").all() and len(got) == len(want)
    for c in ("ticker", "option_type", "expiration_date", "strike", "last_price", "bid", "ask", "open_interest", "implied_volatility"):
        assert got[c].astype(object).tolist() == got[f"{c}_want"].astype(object).tolist(), c
    traded = got["volume_want"] > 0  # Yahoo leaves volume out for a contract not traded
    assert got.loc[traded, "volume"].tolist() == got.loc[traded, "volume_want"].astype("float64").tolist()
    assert got.loc[~traded, "volume"].isna().all()
    # One request lists the expiries, one more per expiry.
    for t in ("NVDA", "SPY", "KO"):
        assert len([c for c in session.calls("options", t) if c.status == 200]) == 1 + 7


def test_valuation_and_fundamentals_are_the_sample_markets(market):
    source, _ = source_for(market, [])
    truth = sample()
    valuation = source.valuation_snapshots(["NVDA", "KO", "SPY"], TODAY, TODAY)
    want = truth.valuation_snapshots(["NVDA", "KO"], TODAY, TODAY).frame.set_index("ticker")
    assert outcome(valuation, "SPY")["status"] == EMPTY  # a fund has no valuation fields
    got = valuation.frame.set_index("ticker")
    for c in ("market_cap", "shares_outstanding", "forward_eps", "trailing_eps", "forward_pe", "trailing_pe", "price_to_sales_ttm", "sector", "industry"):
        assert got.loc[["NVDA", "KO"], c].tolist() == want.loc[["NVDA", "KO"], c].tolist(), c

    start = TODAY - dt.timedelta(days=365)
    fundamentals = source.fundamentals(["NVDA"], start, TODAY)
    want = truth.fundamentals(["NVDA"], start, TODAY).frame
    assert 3 <= len(want) <= 5  # a year of reports, all among the five quarters Yahoo serves
    got = fundamentals.frame
    for c in ("period_end", "report_date", "revenue", "gross_profit", "operating_income", "net_income", "diluted_eps", "diluted_shares"):
        assert got[c].tolist() == want[c].tolist(), c


def test_a_delisted_ticker_is_unknown_and_a_broken_one_fails_after_its_retries(market):
    waits = []
    source, _ = source_for(market, waits)
    prices = source.prices(["SYN001", "SYN002", "NVDA"], JAN_21, TODAY)
    broken, delisted = outcome(prices, "SYN001"), outcome(prices, "SYN002")
    assert (broken["status"], bool(broken["retryable"]), broken["attempts"]) == (FAILED, True, 3)
    assert "HTTP 500" in broken["reason"]
    assert (delisted["status"], bool(delisted["retryable"])) == (FAILED, False)
    assert delisted["reason"].startswith("unknown or delisted ticker SYN002")
    assert outcome(prices, "NVDA")["status"] == OK and pd.isna(outcome(prices, "NVDA")["retryable"])
    assert len(waits) == 2  # the broken ticker's two backoffs; a delisted one is not retried

    options = source.option_quotes(["SYN001", "SYN002"], TODAY, TODAY)
    assert outcome(options, "SYN002")["status"] == EMPTY  # Yahoo lists no expiries for it
    fundamentals = source.fundamentals(["SYN002", "SPY"], TODAY - dt.timedelta(days=365), TODAY)
    assert list(fundamentals.outcomes["status"]) == [EMPTY, EMPTY]  # no statement, as for a fund
    assert (outcome(options, "SYN001")["status"], bool(outcome(options, "SYN001")["retryable"])) == (FAILED, True)

    market.heal()
    assert outcome(source.prices(["SYN001"], JAN_21, TODAY), "SYN001")["status"] == OK


def test_a_hung_request_costs_the_timeout_the_source_sets_on_every_request(yf_isolated):
    hung = []
    market = FakeMarket(sample(), today=TODAY, timeout_share=1.0, timeout_wait_s=None, sleep=hung.append)
    source, session = source_for(market, [], timeout_s=2.5)
    batch = source.prices(["NVDA"], JAN_21, TODAY)

    row = outcome(batch, "NVDA")
    assert (row["status"], bool(row["retryable"]), row["attempts"]) == (FAILED, True, 3)
    assert "Timeout" in row["reason"]
    data = [c for c in session.trail if c.route in DATA_ROUTES]
    assert data and all(c.status == "timeout" for c in data)
    assert hung == [2.5] * len(data)
    assert {c.timeout for c in session.trail} == {2.5}  # yfinance asks for 30 s; the source sets its own


def test_latency_and_failure_shares_are_seeded_per_request_not_per_thread_order():
    m1 = FakeMarket(sample(), today=TODAY, seed=3, latency_s=(0.05, 0.3), rate_limit_share=0.2, timeout_share=0.1, sleep=lambda s: None)
    m2 = FakeMarket(sample(), today=TODAY, seed=3, latency_s=(0.05, 0.3), rate_limit_share=0.2, timeout_share=0.1, sleep=lambda s: None)
    asks = [("chart", f"T{i}", {"period1": "1", "period2": "2", "interval": "1d"}) for i in range(2000)]
    fates = [m1.fate(*a) for a in asks]
    assert fates == [m2.fate(*a) for a in reversed(asks)][::-1]  # asked in the other order
    assert abs(fates.count(429) / len(fates) - 0.2) < 0.03
    assert abs(fates.count("timeout") / len(fates) - 0.1) < 0.03
    # Asking again is a new draw; the handshake never fails.
    assert [m1.fate(*a) for a in asks] != fates
    assert {m1.fate("crumb", "", {}) for _ in range(50)} == {None}
    waited = []
    m3 = FakeMarket(sample(), today=TODAY, latency_s=(0.05, 0.3), sleep=waited.append)
    for a in asks[:500]:
        m3.wait(*a)
    assert min(waited) >= 0.05 and max(waited) < 0.3 and 0.15 < sum(waited) / len(waited) < 0.2


def test_retries_are_counted_from_the_trail(market):
    """Two 429s on NVDA's bars: yfinance resends the first by itself, the source retries after
    the second, and the third answer is good: two retries, both of the same request."""
    source, session = source_for(market, [])
    session.fail("chart", "NVDA", ["ok", 429, 429])  # the timezone probe first, then the bars
    batch = source.prices(["NVDA", "KO"], JAN_21, TODAY)
    assert outcome(batch, "NVDA")["attempts"] == 2
    assert FakeMarket.retries(session.trail) == 2
    bars = [c for c in session.calls("chart", "NVDA") if "period1" in c.query]
    assert [c.status for c in bars] == [429, 429, 200]
    assert len({request_key(c.route, c.symbol, c.query) for c in bars}) == 1  # whatever crumb each carried


def test_failing_tickers_are_the_last_synthetic_stocks():
    universe = SampleSource.scaled_universe(30)
    delisted, broken = pick_failing(universe, 3, 2)
    assert delisted == {"SYN002", "SYN003", "SYN004"} and broken == {"SYN005", "SYN006"}
    with pytest.raises(ValueError, match="need that many synthetic stocks"):
        pick_failing(universe, 5, 2)
    with pytest.raises(ValueError, match="ZZZ"):
        FakeMarket(sample(), today=TODAY, delisted={"ZZZ"})
