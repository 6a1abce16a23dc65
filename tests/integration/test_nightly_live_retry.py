"""A live night with failing tickers, and fetching just them again: `bellwether run` on
`--source live` offline, every Yahoo request answered by the fake market (tests/fakes/market.py)
through yfinance's own code, CBOE's statistics by the fake CBOE.

The market: two index funds and three stocks that answer, two stocks whose every request fails
with HTTP 500 until the outage heals (SYN001, SYN002), and two that Yahoo no longer knows
(SYN003, SYN004). What each dataset makes of them follows from how Yahoo answers (see the
fake's docstring and sources/yahoo.py): the broken ones fail in all four Yahoo datasets after
their retries; the delisted ones fail as unknown for prices and valuation, while Yahoo answers
their options and fundamentals requests as for a ticker without any (empty, not failed).
"""

import datetime as dt
import functools
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import sources.live as live_module
from flows.backfill import backfill
from flows.cli import app
from sources import calendar, registry
from sources.base import load_universe
from sources.sample import SampleSource
from tests.conftest import lake_target
from tests.fakes.cboe import FakeCboeSession
from tests.fakes.market import DATA_ROUTES, FakeMarket
from tests.fakes.yahoo import FakeYahooSession
from tests.integration.conftest import fetch, scalar

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

DAY = dt.date(2025, 1, 28)
AFTER_CLOSE = dt.datetime(2025, 1, 28, 23, 0, tzinfo=dt.UTC)   # 18:00 New York
BROKEN, DELISTED = ("SYN001", "SYN002"), ("SYN003", "SYN004")
YAHOO_DATASETS = ("prices_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots")
ROUTES = {"prices_daily": "chart", "option_quotes": "options", "valuation_snapshots": "quoteSummary", "fundamentals_quarterly": "timeseries"}


class Night:
    """The fake market, its transports and the warehouse of one test."""

    def __init__(self, tmp_path, monkeypatch):
        bundled = load_universe()
        universe = pd.concat(
            [bundled[bundled["ticker"].isin(["SPY", "QQQ", "NVDA", "MSFT", "KO"])], SampleSource.synthetic_universe(4)],
            ignore_index=True,
        )
        self.universe = tmp_path / "universe.csv"
        universe.to_csv(self.universe, index=False)
        self.market = FakeMarket(SampleSource(universe=universe), today=DAY, delisted=DELISTED, broken=BROKEN)
        self.market.warm()
        self.yahoo = FakeYahooSession(market=self.market)
        self.cboe = FakeCboeSession(self.market.cboe_bodies(dt.date(2025, 1, 2), DAY))
        self.waits: list[float] = []
        self.warehouse = lake_target(tmp_path)
        monkeypatch.setattr(live_module, "make_live_source", functools.partial(
            live_module.make_live_source, yahoo_session=self.yahoo, cboe_session=self.cboe,
            now=lambda: AFTER_CLOSE, sleep=self.waits.append,
        ))
        monkeypatch.setenv("BELLWETHER_RETRY_MAX_ATTEMPTS", "3")
        registry.make_source.cache_clear()

    def cli(self, *flags: str) -> tuple[int, str]:
        """`bellwether run` in this process (the fakes are this process's): its exit code and
        what it printed, whitespace collapsed (Rich wraps long lines)."""
        registry.make_source.cache_clear()
        result = CliRunner().invoke(app, [
            "run", "--source", "live", "--date", str(DAY), "--universe", str(self.universe), "--lookback-days", "2",
            "--history-sessions", "3", *flags,
        ], env={"BELLWETHER_WAREHOUSE": self.warehouse, "BELLWETHER_PROGRESS": "off"})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # tables' rules too

    def asked(self, since: int = 0) -> dict[str, set[str]]:
        """The symbols each data route was asked for, from request `since` on."""
        out: dict[str, set[str]] = {}
        for c in self.yahoo.trail[since:]:
            if c.route in DATA_ROUTES:
                out.setdefault(c.route, set()).add(c.symbol)
        return out


@pytest.fixture
def night(yf_isolated, tmp_path, monkeypatch):
    yield Night(tmp_path, monkeypatch)
    registry.make_source.cache_clear()


# What the night must name, worked out from how Yahoo answers each kind of ticker (module doc).
EXPECTED_FAILED = {
    (dataset, ticker, True) for dataset in YAHOO_DATASETS for ticker in BROKEN
} | {(dataset, ticker, False) for dataset in ("prices_daily", "valuation_snapshots") for ticker in DELISTED}


def failed_outcomes(night, run_id) -> set:
    return set(fetch(
        night.warehouse, "select dataset, ticker, retryable from audit.fetch_outcomes where run_id = ? and status = 'failed'", [run_id],
    ))


def test_a_night_with_failing_tickers_ends_partial_naming_every_one_then_a_retry_fetches_just_them(night):
    """`bellwether run` as users start it, then `--retry-failed` while the outage lasts, after it,
    and once more with nothing left."""
    code, said = night.cli()

    assert code == 4, said
    (run_id, message), = fetch(night.warehouse, "select run_id, message from audit.runs where status = 'partial'")
    assert failed_outcomes(night, run_id) == EXPECTED_FAILED
    # Every failed ticker, per dataset, the retryable apart from the delisted; 12 failures and
    # none left out ("... and N more" would hide the names).
    assert message.startswith("12 fetch(es) failed: ")
    assert "prices_daily: 2 retryable (SYN001, SYN002), 2 unknown or delisted (SYN003, SYN004);" in message
    assert "valuation_snapshots: 2 retryable (SYN001, SYN002), 2 unknown or delisted (SYN003, SYN004) (" in message
    assert "option_quotes: 2 retryable (SYN001, SYN002);" in message
    assert "fundamentals_quarterly: 2 retryable (SYN001, SYN002);" in message
    assert message.endswith(f"; `bellwether run --date {DAY} --retry-failed` fetches the retryable ones again")
    assert " ".join(message.split()) in said
    # ... and a table of every failure with its kind: one row each.
    assert sum(said.count(f"{d} {t} retryable ") for d in YAHOO_DATASETS for t in BROKEN) == 8
    assert sum(said.count(f"{d} {t} unknown or delisted ") for d in YAHOO_DATASETS for t in DELISTED) == 4
    # Everything else loaded: 4 sessions (the first history: 3 sessions back and the night).
    sessions = len(calendar.sessions(calendar.sessions_back(DAY, 3), DAY))
    assert sessions == 4
    assert dict(fetch(night.warehouse, "select ticker, count(*) from raw.prices_daily group by 1")) == {
        t: sessions for t in ("SPY", "QQQ", "NVDA", "MSFT", "KO")
    }
    assert {t for (t,) in fetch(night.warehouse, "select distinct ticker from raw.option_quotes")} == {"SPY", "QQQ", "NVDA", "MSFT", "KO"}

    # While the outage lasts, a retry fails again and names what still fails, only that.
    code, said = night.cli("--retry-failed")
    assert code == 4, said
    (run_id, message), = fetch(night.warehouse, "select run_id, message from audit.runs where status = 'partial' order by started_at desc limit 1")
    assert message.startswith("8 fetch(es) failed: prices_daily: 2 retryable (SYN001, SYN002); ")
    assert "SYN003" not in message
    assert failed_outcomes(night, run_id) == {f for f in EXPECTED_FAILED if f[2]}

    # The outage is over. The retry asks Yahoo for the broken tickers alone, in every dataset
    # they failed in, and never for a delisted one; CBOE is not asked again.
    night.market.heal()
    before, cboe_before = len(night.yahoo.trail), len(night.cboe.trail)
    code, said = night.cli("--retry-failed")

    assert code == 0, said
    assert night.asked(before) == {route: set(BROKEN) for route in ("chart", "options", "quoteSummary", "quote", "timeseries", "earnings")}
    assert len(night.cboe.trail) == cboe_before
    assert (
        f"retrying the failed fetches of {DAY}: prices_daily: SYN001, SYN002; fundamentals_quarterly: SYN001, SYN002; "
        "option_quotes: SYN001, SYN002; valuation_snapshots: SYN001, SYN002; not retried, unknown or delisted: "
        "prices_daily: SYN003, SYN004; valuation_snapshots: SYN003, SYN004"
    ) in said
    assert dict(fetch(night.warehouse, "select ticker, count(*) from raw.prices_daily where ticker like 'SYN%' group by 1")) == {
        "SYN001": sessions, "SYN002": sessions,
    }
    assert scalar(night.warehouse, "select count(distinct ticker) from raw.valuation_snapshots where ticker in ('SYN001', 'SYN002')") == 2
    assert scalar(night.warehouse, "select count(distinct ticker) from raw.option_quotes where ticker in ('SYN001', 'SYN002')") == 2
    assert fetch(night.warehouse, "select status, message, json_extract_string(parameters, '$.retry_failed') from audit.runs order by started_at")[1:] == [
        ("partial", message, "true"), ("succeeded", None, "true"),
    ]
    # The marts were built for what the retry brought.
    assert scalar(night.warehouse, "select count(*) from marts.technicals_daily where ticker = 'SYN001'") == sessions

    # Nothing is left to retry: it says so, asks nothing and records no run.
    before = len(night.yahoo.trail)
    code, said = night.cli("--retry-failed")
    assert code == 0, said
    assert (
        f"nothing to retry for {DAY}: no nightly run of that date has a retryable failed fetch; not retried, unknown or "
        "delisted: prices_daily: SYN003, SYN004; valuation_snapshots: SYN003, SYN004"
    ) in said
    assert len(night.yahoo.trail) == before
    assert scalar(night.warehouse, "select count(*) from audit.runs") == 3


def test_a_resumed_backfill_fetches_only_the_tickers_its_chunks_owe(night):
    """The backfill's own resume: a chunk records the tickers it loaded, and the same backfill
    run again asks Yahoo only for the ones that failed."""
    args = dict(
        start=dt.date(2025, 1, 13), end=dt.date(2025, 1, 24), source="live", tickers="SPY,NVDA,SYN001,SYN002",
        datasets="prices_daily", chunk="week", universe=str(night.universe), warehouse=night.warehouse,
    )
    registry.make_source.cache_clear()
    first = backfill(**args)
    assert first["status"] == "partial"
    assert {(f["ticker"], f["window"]) for f in first["failed"]} == {
        (t, w) for t in BROKEN for w in ("2025-01-13..2025-01-20", "2025-01-21..2025-01-24")
    }

    night.market.heal()
    before = len(night.yahoo.trail)
    registry.make_source.cache_clear()
    second = backfill(**args)
    assert second["status"] == "succeeded"
    assert night.asked(before) == {"chart": set(BROKEN)}
    assert [(p["tickers"], p["status"]) for p in second["plan"]] == [(2, "to load"), (2, "to load")]
    # Both weeks whole now: 5 + 4 sessions (the 20th was a holiday) for every ticker.
    assert dict(fetch(night.warehouse, "select ticker, count(*) from raw.prices_daily group by 1")) == {
        t: 9 for t in ("SPY", "NVDA", "SYN001", "SYN002")
    }
