"""The nightly flow on `--source live`, offline: yfinance and our CBOE client run for real on
canned responses served by fake transport sessions (tests/fakes). One ticker is rate limited
past its retries and one does not exist: the night loads everything else and ends partial,
naming both."""

import datetime as dt

import pytest

import sources.live as live_module
from flows.nightly import nightly
from sources import registry
from sources.cboe import CboeSource
from sources.live import LiveConfig, LiveSource
from sources.retry import RetryPolicy
from sources.yahoo import YahooSource
from tests.conftest import lake_target
from tests.fakes.cboe import FakeCboeSession
from tests.integration.conftest import fetch, scalar

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

AFTER_CLOSE_JAN_28 = dt.datetime(2025, 1, 28, 23, 0, tzinfo=dt.UTC)


@pytest.fixture
def live_night(fake_yahoo, monkeypatch, tmp_path):
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=30.0)
    waits = []

    def make_live_source(config: LiveConfig) -> LiveSource:
        yahoo = YahooSource(session=fake_yahoo, policy=policy, sleep=waits.append, now=lambda: AFTER_CLOSE_JAN_28)
        cboe = CboeSource(session=FakeCboeSession.with_fixtures(), policy=policy, sleep=waits.append)
        return LiveSource({"yahoo": yahoo, "cboe": cboe}, dict(config.providers))

    monkeypatch.setattr(live_module, "make_live_source", make_live_source)
    registry.make_source.cache_clear()
    universe = tmp_path / "universe.csv"
    universe.write_text(
        "ticker,name,sector,cohort,role\n"
        "SPY,S&P 500 ETF,Index,,index_proxy\nQQQ,Nasdaq 100 ETF,Index,,index_proxy\n"
        "NVDA,NVIDIA,Technology,ai,stock\nZZZZQX,No such company,Technology,non_ai,stock\n"
    )
    # SPY's price history is rate limited on every attempt (yfinance resends once itself).
    fake_yahoo.fail("chart", "SPY", [429] * 20)
    yield lake_target(tmp_path), universe, waits
    registry.make_source.cache_clear()


def test_a_live_night_with_failures_loads_the_rest_and_ends_partial(live_night):
    path, universe, waits = live_night
    summary = nightly(
        run_date=dt.date(2025, 1, 28), source="live", universe=str(universe), warehouse=str(path),
        lookback_days=3, history_sessions=3,
    )
    assert summary["status"] == "partial"
    assert "SPY" in summary["message"] and "ZZZZQX" in summary["message"]
    # Everything that could load did.
    assert fetch(path, "select ticker, count(*) from raw.prices_daily group by 1 order by 1") == [("NVDA", 4), ("QQQ", 4)]
    assert fetch(path, "select close from raw.prices_daily where ticker = 'NVDA' and trade_date = '2025-01-27'") == [(118.42,)]
    pc = dict(fetch(path, "select scope, ratio from raw.putcall_daily where trade_date = '2025-01-27'"))
    assert (pc["equity"], pc["total"], pc["index"]) == (0.57, 0.89, 1.13)
    # The canned chain is the real one of 2025-02-03, served here as "now" on 28 January: its
    # contracts traded after the snapshot it would be filed under, so the land check holds the
    # whole chain in quarantine (nothing lost, nothing misdated) instead of loading it.
    assert scalar(path, "select count(*) from raw.option_quotes") == 0
    held = fetch(path, "select count(*), count(distinct check_name), any_value(reason) from audit.quarantine where table_name = 'raw.option_quotes'")[0]
    assert held[0] == len(fetch(path, "select 1 from audit.quarantine where table_name = 'raw.option_quotes' and (row_json->>'ticker') = 'NVDA'")) > 0
    assert held[1] == 1 and held[2].startswith("batch held: last_trade_after_snapshot")
    assert scalar(path, "select count(*) from raw.valuation_snapshots where ticker = 'NVDA'") == 1
    # Each failure is recorded with its cause and attempts; retries waited through the injected sleep.
    failed = dict(fetch(path, "select ticker, reason from audit.fetch_outcomes where status = 'failed' and dataset = 'prices_daily'"))
    assert set(failed) == {"SPY", "ZZZZQX"}
    assert "429" in failed["SPY"] or "rate" in failed["SPY"].lower()
    assert "unknown or delisted" in failed["ZZZZQX"]
    assert scalar(path, "select attempts from audit.fetch_outcomes where ticker = 'SPY' and dataset = 'prices_daily'") == 3
    assert waits, "retries should back off through the injected sleep"
    assert fetch(path, "select status from audit.runs") == [("partial",)]
    # The technicals were still built for what loaded.
    assert scalar(path, "select count(*) from marts.technicals_daily where ticker = 'NVDA'") == 4
