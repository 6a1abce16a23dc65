"""The Yahoo source, proven offline: yfinance 1.7's own code runs on canned bodies served by
FakeYahooSession (tests/fakes/yahoo.py), so the handshake, yfinance's resend after a 4xx/5xx,
its 429 detection and its parsers are the real ones.

Expected figures are the printed ones, written out by hand from the real files (see
../shared/data/real/PROVENANCE.md and tests/fixtures/yahoo/make_bodies.py), not read back from
the code under test.
"""

import datetime as dt

import pandas as pd
import pytest
import yfinance as yf
from yfinance.data import YfData

from sources import calendar
from sources.contract import EMPTY, FAILED, OK, ContractError
from sources.retry import RetryPolicy
from sources.yahoo import YahooSource

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # yfinance's own inplace calls

AFTER_CLOSE_JAN_28 = dt.datetime(2025, 1, 28, 23, 0, tzinfo=dt.UTC)   # 18:00 New York
AFTER_CLOSE_FEB_3 = dt.datetime(2025, 2, 3, 21, 30, tzinfo=dt.UTC)    # 16:30 New York
JAN_21, JAN_24, JAN_27, JAN_28 = (dt.date(2025, 1, d) for d in (21, 24, 27, 28))
SESSIONS_JAN_21_28 = [dt.date(2025, 1, d) for d in (21, 22, 23, 24, 27, 28)]


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def waits():
    return []


@pytest.fixture
def source(fake_yahoo, waits):
    return YahooSource(
        session=fake_yahoo, policy=RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=30.0),
        sleep=waits.append, now=Clock(AFTER_CLOSE_JAN_28),
    )


def outcome(batch, ticker):
    rows = batch.outcomes[batch.outcomes["ticker"] == ticker]
    assert len(rows) == 1, batch.outcomes
    return rows.iloc[0]


def row(frame, **where):
    mask = True
    for k, v in where.items():
        mask = mask & (frame[k] == v)
    rows = frame[mask]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# -- prices ------------------------------------------------------------------------------------


def test_a_normal_night_loads_every_ticker_through_the_injected_session(source, fake_yahoo, waits):
    batch = source.prices(["NVDA", "SPY", "QQQ"], JAN_21, JAN_28)

    assert list(batch.outcomes["status"]) == [OK, OK, OK]
    assert list(batch.outcomes["rows"]) == [6, 6, 6] and list(batch.outcomes["attempts"]) == [1, 1, 1]
    assert batch.rejects.empty and waits == []
    for ticker in ("NVDA", "SPY", "QQQ"):
        dates = [d.date() for d in batch.frame.loc[batch.frame["ticker"] == ticker, "trade_date"]]
        assert dates == SESSIONS_JAN_21_28 == calendar.sessions(JAN_21, JAN_28)

    nvda = batch.frame[batch.frame["ticker"] == "NVDA"].set_index("trade_date")
    # As traded, float32 noise gone: 118.41999816894531 on the wire is 118.42.
    assert nvda.loc["2025-01-24", "close"] == 142.62 and nvda.loc["2025-01-27", "close"] == 118.42
    assert nvda.loc["2025-01-27", "open"] == 124.8 and nvda.loc["2025-01-27", "volume"] == 818_830_900
    drop = nvda.loc["2025-01-27", "adj_close"] / nvda.loc["2025-01-24", "adj_close"] - 1
    assert round(drop * 100, 2) == -16.97
    spy = batch.frame[batch.frame["ticker"] == "SPY"].set_index("trade_date")
    assert spy.loc["2025-01-24", "close"] == 607.97 and spy.loc["2025-01-27", "close"] == 599.37
    assert spy.loc["2025-01-27", "adj_close"] == pytest.approx(590.7997, abs=1e-4)
    assert set(batch.frame["dividend"]) == {0.0} and set(batch.frame["split_ratio"]) == {1.0}

    # Every request went through the fake (the offline guard fails any real libcurl call).
    assert source.session.inner is fake_yahoo and YfData()._session is source.session
    assert {c.symbol for c in fake_yahoo.calls("chart")} == {"NVDA", "SPY", "QQQ"}
    assert fake_yahoo.unrouted == []


def test_a_split_and_a_dividend_inside_the_window(source):
    batch = source.prices(["NVDA"], dt.date(2024, 6, 5), dt.date(2024, 6, 12))

    f = batch.frame.set_index("trade_date")
    assert f.loc["2024-06-10", "split_ratio"] == 10.0 and f.loc["2024-06-11", "dividend"] == 0.01
    assert f["split_ratio"].drop(f.index[3]).eq(1.0).all() and f["dividend"].drop(f.index[4]).eq(0.0).all()
    # Closes are split-adjusted as traded: continuous through the split, no dividend adjustment.
    assert list(f["close"]) == [122.44, 120.998, 120.888, 121.79, 120.91, 125.2]
    assert f.loc["2024-06-10", "volume"] == 313_434_100
    assert (f["adj_close"] < f["close"]).all()


def test_an_empty_window_is_empty_not_failed(source, fake_yahoo, waits):
    batch = source.prices(["NVDA"], dt.date(2025, 1, 25), dt.date(2025, 1, 26))  # a weekend

    o = outcome(batch, "NVDA")
    assert (o.status, o.rows, o.attempts) == (EMPTY, 0, 1)
    assert "NVDA" in o.reason and batch.frame.empty and batch.failed.empty and waits == []


def test_a_bar_of_a_session_not_yet_closed_is_dropped(source):
    source.now = Clock(dt.datetime(2025, 1, 28, 18, 0, tzinfo=dt.UTC))  # 13:00 New York, market open

    batch = source.prices(["NVDA"], JAN_27, JAN_28)

    assert [d.date() for d in batch.frame["trade_date"]] == [JAN_27]
    assert any("2025-01-28" in n and "not closed" in n for n in batch.notes)


# -- rate limits, retries, partial nights ----------------------------------------------------------


def test_one_429_is_absorbed_by_yfinance_itself(source, fake_yahoo, waits):
    fake_yahoo.fail("chart", "NVDA", [429])

    batch = source.prices(["NVDA"], JAN_21, JAN_28)

    o = outcome(batch, "NVDA")
    assert (o.status, o.attempts, o.rows) == (OK, 1, 6) and waits == []
    assert 429 in [c.status for c in fake_yahoo.calls("chart", "NVDA")]


def test_repeated_429s_are_retried_with_backoff_then_succeed(source, fake_yahoo, waits):
    fake_yahoo.fail("chart", "NVDA", [429] * 4)  # two tries of two requests each (yfinance resends once)

    batch = source.prices(["NVDA"], JAN_21, JAN_28)

    o = outcome(batch, "NVDA")
    assert (o.status, o.attempts, o.rows) == (OK, 3, 6)
    assert len(waits) == 2 and all(0 <= w <= cap for w, cap in zip(waits, (1, 2)))  # jittered, no real wait


def test_429s_exhausting_the_retries_fail_that_ticker_and_load_the_others(source, fake_yahoo, waits, con):
    from warehouse.load import load_batch

    fake_yahoo.fail("chart", "SPY", [429] * 50)

    batch = source.prices(["NVDA", "SPY", "QQQ"], JAN_21, JAN_28)

    spy = outcome(batch, "SPY")
    assert (spy.status, spy.attempts, spy.rows) == (FAILED, 3, 0)
    assert "SPY" in spy.reason and "429" in spy.reason and "3 attempts" in spy.reason
    assert list(batch.failed["ticker"]) == ["SPY"] and len(waits) == 2
    assert batch.frame.groupby("ticker").size().to_dict() == {"NVDA": 6, "QQQ": 6}
    assert any("partial" in n and "SPY" in n for n in batch.notes)

    result = load_batch(con, batch, source="live", run_id="r1", loaded_at=AFTER_CLOSE_JAN_28)
    assert result.inserted == 12 and result.failed == ("SPY",)
    recorded = con.execute("select ticker, status, attempts, reason, retryable from audit.fetch_outcomes order by ticker").fetchall()
    assert [r[:3] for r in recorded] == [("NVDA", "ok", 1), ("QQQ", "ok", 1), ("SPY", "failed", 3)]
    assert recorded[0][3] is None and recorded[2][3] == spy.reason
    assert [r[4] for r in recorded] == [None, None, True]  # rate limited: a later try may work


@pytest.mark.parametrize("script", [
    pytest.param([500, 500], id="http-500-on-the-timezone-probe"),  # an HTML page yfinance cannot parse
    pytest.param(["ok", 503, 503], id="http-503-on-the-prices"),
    pytest.param(["timeout"], id="curl-timeout"),
    pytest.param(["ok", "connection"], id="connection-error"),
    pytest.param(["ok", "down"], id="will-be-right-back-page"),
    pytest.param(["ok", "json500", "json500"], id="http-500-with-a-json-body"),  # yfinance: "no price data"
])
def test_transient_failures_are_retried(source, fake_yahoo, waits, script):
    fake_yahoo.fail("chart", "NVDA", script)

    batch = source.prices(["NVDA"], JAN_21, JAN_28)

    o = outcome(batch, "NVDA")
    assert (o.status, o.attempts, o.rows) == (OK, 2, 6) and len(waits) == 1


def test_a_persistent_http_500_fails_with_its_status(source, fake_yahoo):
    fake_yahoo.fail("chart", "NVDA", [500] * 20)

    o = outcome(source.prices(["NVDA"], JAN_21, JAN_28), "NVDA")

    assert (o.status, o.attempts) == (FAILED, 3)
    assert "HTTP 500" in o.reason and "NVDA" in o.reason


def test_truncated_json_is_a_malformed_response_and_not_retried(source, fake_yahoo, waits):
    fake_yahoo.fail("chart", "NVDA", ["ok", "truncated"])  # the probe is fine, the prices are cut off

    o = outcome(source.prices(["NVDA", "SPY"], JAN_21, JAN_28), "NVDA")

    assert (o.status, o.attempts) == (FAILED, 1) and waits == []
    assert o.reason.startswith("malformed response from Yahoo for NVDA (prices_daily)")
    assert "JSONDecodeError" in o.reason
    assert len(fake_yahoo.calls("chart", "NVDA")) == 2


def test_an_unknown_ticker_is_terminal_and_not_retried(source, fake_yahoo, waits):
    batch = source.prices(["ZZZZQX", "NVDA"], JAN_21, JAN_28)

    o = outcome(batch, "ZZZZQX")
    assert (o.status, o.attempts, o.rows) == (FAILED, 1, 0)
    assert "unknown or delisted" in o.reason and "ZZZZQX" in o.reason
    # One try: the timezone probe and its one resend by yfinance, then yfinance's .info fallback.
    assert [c.status for c in fake_yahoo.calls("chart", "ZZZZQX")] == [404, 404]
    assert len(fake_yahoo.calls("quoteSummary", "ZZZZQX")) == 2
    assert waits == [] and outcome(batch, "NVDA").status == OK


def test_an_unknown_ticker_after_yfinance_stops_asking_info_is_still_unknown(source, fake_yahoo, monkeypatch):
    import yfinance.base

    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 2)  # the per-process allowance is used up

    o = outcome(source.prices(["ZZZZQX"], JAN_21, JAN_28), "ZZZZQX")

    assert (o.status, o.attempts) == (FAILED, 1) and "unknown or delisted" in o.reason
    assert fake_yahoo.calls("quoteSummary") == []


def test_an_unknown_ticker_in_every_dataset(source):
    # Yahoo answers an unknown symbol's options and fundamentals like a valid one's without data.
    source.now = Clock(AFTER_CLOSE_JAN_28)
    day = JAN_28
    statuses = {
        "prices": outcome(source.prices(["ZZZZQX"], day, day), "ZZZZQX").status,
        "valuation": outcome(source.valuation_snapshots(["ZZZZQX"], day, day), "ZZZZQX").status,
        "options": outcome(source.option_quotes(["ZZZZQX"], day, day), "ZZZZQX").status,
        "fundamentals": outcome(source.fundamentals(["ZZZZQX"], day, day), "ZZZZQX").status,
    }
    assert statuses == {"prices": FAILED, "valuation": FAILED, "options": EMPTY, "fundamentals": EMPTY}


# -- concurrency ---------------------------------------------------------------------------------


def test_tickers_run_in_bounded_batches_with_a_pause_between(fake_yahoo, waits):
    source = YahooSource(
        session=fake_yahoo, max_workers=2, batch_size=2, pause_between_batches_s=1.5,
        sleep=waits.append, now=Clock(AFTER_CLOSE_JAN_28),
    )

    batch = source.prices(["QQQ", "NVDA", "SPY", "ZZZZQX", "NVDA"], JAN_21, JAN_28)

    assert list(batch.outcomes["ticker"]) == ["QQQ", "NVDA", "SPY", "ZZZZQX"]  # input order, once each
    assert waits == [1.5]  # two batches of two
    threads = {c.thread for c in fake_yahoo.trail}
    assert 1 <= len(threads) <= 2 and all(t.startswith("yahoo") for t in threads)


def test_many_tickers_on_many_threads_are_each_classified_on_their_own(fake_yahoo, waits):
    """Statuses are noted per thread: one ticker's 429 or 500 never marks another's fetch."""
    import copy

    symbols = [f"S{i:02d}" for i in range(40)]
    for s in symbols:
        fake_yahoo.charts[s] = copy.deepcopy(fake_yahoo.charts["NVDA"])
    rate_limited, server_error, truncated = symbols[0::4], ["S09", "S21", "S33"], ["S10", "S30"]
    for s in rate_limited:
        fake_yahoo.fail("chart", s, [429, 429])
    for s in server_error:
        fake_yahoo.fail("chart", s, [500, 500])
    for s in truncated:
        fake_yahoo.fail("chart", s, ["ok", "truncated"])
    source = YahooSource(
        session=fake_yahoo, max_workers=8, batch_size=20, sleep=waits.append, now=Clock(AFTER_CLOSE_JAN_28),
    )

    batch = source.prices(symbols, JAN_21, JAN_28)

    o = batch.outcomes.set_index("ticker")
    retried = set(rate_limited) | set(server_error)
    assert set(o.index[o["attempts"] == 2]) == retried
    assert set(o.index[o["status"] == FAILED]) == set(truncated)
    assert (o.loc[[s for s in symbols if s not in truncated], "status"] == OK).all()
    assert len(batch.frame) == 6 * (len(symbols) - len(truncated))
    assert len({c.thread for c in fake_yahoo.trail}) > 1


def test_yfinance_raise_switch_is_restored(source):
    before = yf.config.debug.hide_exceptions
    source.prices(["NVDA", "ZZZZQX"], JAN_21, JAN_28)
    assert yf.config.debug.hide_exceptions == before


# -- option chains -------------------------------------------------------------------------------


def test_option_chains_take_every_expiry_as_delivered(source, fake_yahoo):
    source.now = Clock(AFTER_CLOSE_FEB_3)

    batch = source.option_quotes(["NVDA"], dt.date(2025, 2, 3), dt.date(2025, 2, 3))

    f = batch.frame
    assert outcome(batch, "NVDA").status == OK and len(f) == 18 and batch.rejects.empty
    assert sorted({d.date() for d in f["expiration_date"]}) == [dt.date(2025, 2, 7), dt.date(2025, 2, 14)]
    assert f.groupby("option_type").size().to_dict() == {"call": 10, "put": 8}
    assert set(f["snapshot_date"]) == {dt.datetime(2025, 2, 3)}
    assert set(f["snapshot_at"]) == {AFTER_CLOSE_FEB_3}
    c = row(f, contract_symbol="NVDA250207C00115000")
    assert (c.strike, c.bid, c.ask, c.last_price, c.volume, c.open_interest) == (115.0, 4.45, 4.5, 4.5, 63674, 9339)
    assert c.implied_volatility == pytest.approx(0.53272, abs=1e-6)
    assert c.last_trade_at == dt.datetime(2025, 2, 3, 15, 40, 23, tzinfo=dt.UTC)
    # Kept as delivered: yfinance's 1e-5 placeholder IV, and a stale contract Yahoo sent no volume for.
    assert row(f, contract_symbol="NVDA250207C00050000").implied_volatility == pytest.approx(1e-5)
    stale = row(f, contract_symbol="NVDA250214C00055000")
    assert stale.volume is pd.NA and stale.last_trade_at.date() == dt.date(2025, 1, 29)
    assert len(fake_yahoo.calls("options", "NVDA")) == 3  # the expiry list, then one per expiry


def test_a_failed_expiry_is_retried_alone(source, fake_yahoo, waits):
    source.now = Clock(AFTER_CLOSE_FEB_3)
    fake_yahoo.fail("options", "NVDA", ["ok", 429, 429])  # the list, then the first expiry twice

    batch = source.option_quotes(["NVDA"], dt.date(2025, 2, 3), dt.date(2025, 2, 3))

    o = outcome(batch, "NVDA")
    assert (o.status, o.attempts, o.rows) == (OK, 2, 18) and len(waits) == 1
    assert len(fake_yahoo.calls("options", "NVDA")) == 5


def test_a_truncated_option_chain_is_malformed(source, fake_yahoo):
    source.now = Clock(AFTER_CLOSE_FEB_3)
    fake_yahoo.fail("options", "NVDA", ["truncated"])

    o = outcome(source.option_quotes(["NVDA"], dt.date(2025, 2, 3), dt.date(2025, 2, 3)), "NVDA")

    assert (o.status, o.attempts) == (FAILED, 1) and "malformed response from Yahoo for NVDA (option_quotes)" in o.reason


def test_an_http_500_yfinance_turns_into_no_expiries_is_retried(source, fake_yahoo, waits):
    source.now = Clock(AFTER_CLOSE_FEB_3)
    fake_yahoo.fail("options", "NVDA", ["json500", "json500"])  # yfinance returns () for this body

    o = outcome(source.option_quotes(["NVDA"], dt.date(2025, 2, 3), dt.date(2025, 2, 3)), "NVDA")

    assert (o.status, o.attempts, o.rows) == (OK, 2, 18) and len(waits) == 1


def test_no_listed_options_is_empty(source):
    source.now = Clock(AFTER_CLOSE_FEB_3)
    o = outcome(source.option_quotes(["SPY"], dt.date(2025, 2, 3), dt.date(2025, 2, 3)), "SPY")
    assert (o.status, o.rows) == (EMPTY, 0) and "no option expiries" in o.reason


@pytest.mark.parametrize("method", ["option_quotes", "valuation_snapshots"])
def test_snapshots_cannot_be_backfilled(source, fake_yahoo, method):
    batch = getattr(source, method)(["NVDA"], JAN_21, JAN_27)  # the snapshot would be 2025-01-28's

    assert batch.frame.empty and batch.outcomes.empty and fake_yahoo.trail == []
    assert len(batch.notes) == 1
    assert "only as of now" in batch.notes[0] and "cannot be backfilled" in batch.notes[0]
    assert "2025-01-28" in batch.notes[0]


def test_no_snapshot_while_the_market_is_open(source, fake_yahoo):
    source.now = Clock(dt.datetime(2025, 1, 28, 15, 0, tzinfo=dt.UTC))  # 10:00 New York

    batch = source.valuation_snapshots(["NVDA"], JAN_27, JAN_27)  # the last completed session

    assert batch.frame.empty and fake_yahoo.trail == [] and "open" in batch.notes[0]


# -- valuation -----------------------------------------------------------------------------------


def test_valuation_snapshot_from_info(source):
    batch = source.valuation_snapshots(["NVDA", "SPY"], JAN_28, JAN_28)

    v = row(batch.frame, ticker="NVDA")
    assert v.snapshot_date.date() == JAN_28
    assert (v.market_cap, v.shares_outstanding) == (3_158_865_264_640, 24_490_000_384)
    assert (v.forward_eps, v.trailing_eps, v.forward_pe, v.trailing_pe) == (4.62, 2.53, 27.92, 50.98)
    assert v.price_to_sales_ttm == 27.888 and (v.sector, v.industry) == ("Technology", "Semiconductors")
    assert v.market_cap / v.shares_outstanding == pytest.approx(128.99, rel=1e-4)  # NVDA's 2025-01-28 close
    spy = outcome(batch, "SPY")
    assert (spy.status, spy.rows) == (EMPTY, 0) and "SPY" in spy.reason  # an ETF has none of these


def test_a_missing_forward_eps_comes_from_the_earnings_estimate(source, fake_yahoo):
    del fake_yahoo.summaries["NVDA"]["quoteSummary"]["result"][0]["defaultKeyStatistics"]["forwardEps"]

    batch = source.valuation_snapshots(["NVDA"], JAN_28, JAN_28)

    assert row(batch.frame, ticker="NVDA").forward_eps == 4.43124  # earningsTrend "+1y" mean
    assert any("earnings estimate" in n for n in batch.notes)


def test_an_infinite_pe_is_stored_as_null(source, fake_yahoo):
    fake_yahoo.summaries["NVDA"]["quoteSummary"]["result"][0]["summaryDetail"]["trailingPE"] = "Infinity"
    fake_yahoo.quotes["NVDA"]["quoteResponse"]["result"][0]["trailingPE"] = "Infinity"

    batch = source.valuation_snapshots(["NVDA"], JAN_28, JAN_28)

    v = row(batch.frame, ticker="NVDA")
    assert v.trailing_pe != v.trailing_pe and v.forward_pe == 27.92 and batch.rejects.empty
    assert any("trailingPE" in n for n in batch.notes)


@pytest.mark.parametrize("script, expected", [
    pytest.param([500, 500], (OK, 2), id="http-500-retried"),
    pytest.param([429, 429], (OK, 2), id="rate-limit-retried"),
    pytest.param(["truncated"], (FAILED, 1), id="truncated-json-not-retried"),
])
def test_valuation_failures_are_classified(source, fake_yahoo, script, expected):
    fake_yahoo.fail("quoteSummary", "NVDA", script)
    o = outcome(source.valuation_snapshots(["NVDA"], JAN_28, JAN_28), "NVDA")
    assert (o.status, o.attempts) == expected


def test_valuation_of_an_unknown_ticker_fails_as_unknown(source):
    o = outcome(source.valuation_snapshots(["ZZZZQX"], JAN_28, JAN_28), "ZZZZQX")
    assert (o.status, o.attempts) == (FAILED, 1) and "unknown or delisted ticker ZZZZQX" in o.reason


# -- fundamentals --------------------------------------------------------------------------------


def test_fundamentals_carry_yahoos_report_dates(source):
    batch = source.fundamentals(["NVDA"], dt.date(2023, 1, 1), JAN_28)

    f = batch.frame.set_index("period_end")
    # Yahoo dates quarters by the month end: NVIDIA's quarter ended 2024-10-27 is 2024-10-31.
    q3 = f.loc["2024-10-31"]
    assert q3.report_date.date() == dt.date(2024, 11, 20)  # the press release
    assert (q3.revenue, q3.cost_of_revenue, q3.gross_profit) == (35_082e6, 8_926e6, 26_156e6)
    assert (q3.operating_income, q3.net_income, q3.diluted_eps) == (21_869e6, 19_309e6, 0.78)
    assert [d.date() for d in f["report_date"]] == [
        dt.date(2023, 11, 21), dt.date(2024, 2, 21), dt.date(2024, 5, 22), dt.date(2024, 8, 28), dt.date(2024, 11, 20),
    ]
    assert f.loc["2024-04-30", "diluted_eps"] == 0.60  # restated for the 10:1 split (5.98 as printed)
    assert outcome(batch, "NVDA").status == OK and batch.rejects.empty


def test_a_nightly_window_without_a_report_is_empty(source):
    o = outcome(source.fundamentals(["NVDA"], JAN_21, JAN_28), "NVDA")
    assert (o.status, o.rows) == (EMPTY, 0) and "reported in 2025-01-21..2025-01-28" in o.reason


def test_without_earnings_dates_a_quarter_is_dated_when_first_seen(source, fake_yahoo):
    fake_yahoo.fail("earnings", "NVDA", [404, 404])

    batch = source.fundamentals(["NVDA"], JAN_21, JAN_28)

    assert outcome(batch, "NVDA").status == OK and len(batch.frame) == 5
    assert set(batch.frame["report_date"]) == {dt.datetime(2025, 1, 28)}  # today's session, never earlier
    assert any("first seen" in n for n in batch.notes)


def test_rate_limited_earnings_dates_fail_the_ticker(source, fake_yahoo):
    fake_yahoo.fail("earnings", "NVDA", [429] * 50)

    o = outcome(source.fundamentals(["NVDA"], dt.date(2023, 1, 1), JAN_28), "NVDA")

    assert (o.status, o.attempts) == (FAILED, 3) and "429" in o.reason


def test_a_fundamentals_http_500_is_retried(source, fake_yahoo, waits):
    # yfinance falls back to chunked requests after a failed one: 2 x 2 requests fail, then 2 succeed.
    fake_yahoo.fail("timeseries", "NVDA", [500] * 4)

    o = outcome(source.fundamentals(["NVDA"], dt.date(2023, 1, 1), JAN_28), "NVDA")

    assert (o.status, o.attempts, o.rows) == (OK, 2, 5) and len(waits) == 1


def test_an_etf_has_no_fundamentals(source):
    o = outcome(source.fundamentals(["SPY"], dt.date(2023, 1, 1), JAN_28), "SPY")
    assert (o.status, o.rows) == (EMPTY, 0)


# -- the rest of the protocol --------------------------------------------------------------------


def test_putcall_points_to_cboe(source, fake_yahoo):
    batch = source.putcall(JAN_28, JAN_28)
    assert batch.frame.empty and "CBOE" in batch.notes[0] and fake_yahoo.trail == []


def test_tickers_are_required(source):
    with pytest.raises(ContractError, match="needs the tickers"):
        source.prices(None, JAN_28, JAN_28)
