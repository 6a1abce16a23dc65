"""The nightly flow end to end on the sample source, in Prefect's local mode."""

import datetime as dt

import pytest

from flows.nightly import nightly
from tests.conftest import copy_lake, lake_catalog, lake_target
from tests.integration.conftest import close, fetch, scalar, snapshot
from transforms.runner import build
from warehouse.connect import writer

SELLOFF = dt.date(2025, 1, 27)


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    path = lake_target(tmp_path_factory.mktemp("nightly"))
    summary = nightly(run_date=SELLOFF, source="sample", warehouse=str(path), history_sessions=260)
    return path, summary


def test_first_night_loads_history_and_builds_technicals(first_night):
    path, summary = first_night
    assert summary["status"] == "succeeded"
    loads = {ld["table"]: ld for ld in summary["loads"] if ld["inserted"]}
    assert set(loads) >= {"raw.prices_daily", "raw.putcall_daily", "raw.option_quotes", "raw.valuation_snapshots", "raw.fundamentals_quarterly"}
    # 24 universe tickers x 261 sessions (the run date and 260 before it).
    assert scalar(path, "select count(*) from raw.prices_daily") == 24 * 261
    assert scalar(path, "select min(trade_date) from raw.prices_daily") == dt.date(2024, 1, 11)  # 260 sessions back
    assert scalar(path, "select count(distinct trade_date) from raw.prices_daily") == 261
    assert scalar(path, "select count(*) from raw.prices_daily where trade_date = '2025-01-09'") == 0  # market closed
    assert scalar(path, "select count(distinct source) from raw.prices_daily") == 1
    assert scalar(path, "select any_value(source) from raw.option_quotes") == "sample"
    # The moving averages exist on the run date (200-DMA needs 200 sessions of history).
    row = fetch(path, "select close, sma_50, sma_200, pct_to_sma_50 from marts.technicals_daily where ticker = 'SPY' and trade_date = ?", [SELLOFF])[0]
    assert all(v is not None for v in row)
    assert row[3] == pytest.approx(100 * (row[1] / row[0] - 1))
    # The synthetic AI-led selloff shows in the mart.
    nvda = scalar(path, "select return_1d_pct from marts.technicals_daily where ticker = 'NVDA' and trade_date = ?", [SELLOFF])
    assert nvda < -10
    run = fetch(path, "select status, flow, rows_by_table::varchar from audit.runs")
    assert len(run) == 1 and run[0][:2] == ("succeeded", "nightly") and "raw.prices_daily" in run[0][2]
    headline = {h["ticker"] for h in summary["headline"]}
    assert {"SPY", "QQQ", "XLK"} <= headline


def test_running_the_same_night_again_leaves_identical_tables(first_night):
    path, _ = first_night
    before = snapshot(path)
    summary = nightly(run_date=SELLOFF, source="sample", warehouse=str(path), history_sessions=260)
    assert summary["status"] == "succeeded"
    assert all(ld["inserted"] == 0 and ld["updated"] == 0 for ld in summary["loads"])
    assert snapshot(path) == before
    assert [r[0] for r in fetch(path, "select status from audit.runs order by started_at")] == ["succeeded", "succeeded"]


def test_next_night_is_incremental_and_equals_a_full_build(first_night, tmp_path):
    path, _ = first_night
    summary = nightly(run_date=dt.date(2025, 1, 28), source="sample", warehouse=str(path))
    tech = next(b for b in summary["builds"] if b["relation"] == "marts.technicals_daily")
    assert tech["mode"] == "incremental"
    prices = next(ld for ld in summary["loads"] if ld["table"] == "raw.prices_daily")
    assert prices["window"] == "2025-01-21..2025-01-28" and prices["inserted"] == 24
    # The look-back's 5 sessions came back unchanged: the build writes the night alone.
    assert tech["rows_written"] == 24
    incremental = snapshot(path, ["marts.technicals_daily"])["marts.technicals_daily"]
    with writer(path) as con:
        build(con, run_date=dt.date(2025, 1, 28), full_refresh=True)
    full = snapshot(path, ["marts.technicals_daily"])["marts.technicals_daily"]
    assert len(full) == len(incremental) and all(close(a, b) for a, b in zip(full, incremental, strict=True))


def test_a_changed_universe_rebuilds_every_day_of_the_marts(first_night, tmp_path):
    """Cohorts apply back through history: when the universe file moves a stock to another
    cohort, the next night rebuilds every day of the marts, not only its look-back."""
    from tests.conftest import ROOT

    path = copy_lake(first_night[0], tmp_path)
    first_day = scalar(path, "select min(trade_date) from marts.valuation_cohorts where cohort = 'ai'")
    assert "AAPL" not in scalar(path, "select members from marts.valuation_cohorts where cohort = 'ai' and trade_date = ?", [first_day])
    universe = tmp_path / "universe.csv"
    universe.write_text((ROOT / "config" / "universe.csv").read_text().replace("Technology,non_ai,stock", "Technology,ai,stock"))
    night = scalar(path, "select max(trade_date) from raw.prices_daily")  # the module's latest night, run again
    summary = nightly(run_date=night, source="sample", warehouse=str(path), universe=str(universe))
    assert summary["status"] == "succeeded"
    builds = {b["relation"]: b for b in summary["builds"]}
    assert {builds[m]["mode"] for m in ("marts.valuation_cohorts", "marts.cohort_sma_distance", "marts.technicals_daily")} == {"full"}
    # The change is recorded, and marked paid once the rebuild was published.
    assert fetch(path, "select tickers_changed, built_at is not null from audit.universe_changes where run_id = ?", [summary["run_id"]]) == [(1, True)]
    for day in (first_day, night):
        assert "AAPL" in scalar(path, "select members from marts.valuation_cohorts where cohort = 'ai' and trade_date = ?", [day])
        assert "AAPL" not in scalar(path, "select members from marts.valuation_cohorts where cohort = 'non_ai' and trade_date = ?", [day])


def test_a_closed_market_day_loads_nothing(tmp_path):
    path = lake_target(tmp_path)
    summary = nightly(run_date=dt.date(2025, 1, 9), source="sample", warehouse=str(path))
    assert summary["status"] == "succeeded"
    assert "closed on 2025-01-09" in summary["message"]
    assert not lake_catalog(path).exists()


def test_summary_is_published_as_a_markdown_artifact(first_night):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, summary = first_night
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-summary"])))
    mine = [a for a in artifacts if str(a.flow_run_id) == summary["run_id"]]
    assert len(mine) == 1 and mine[0].type == "markdown"
    body = mine[0].data
    assert "# Bellwether nightly run for 2025-01-27" in body and "synthetic data" in body
    assert "| raw.prices_daily |" in body and "| SPY |" in body


def test_the_night_writes_its_morning_brief_page(first_night, tmp_path):
    import re
    import shutil
    import subprocess

    path, summary = first_night
    page_path = summary["report"]
    assert page_path == str(lake_catalog(path).parent / "reports" / "brief-2025-01-27.html")
    page = open(page_path, encoding="utf-8").read()
    assert "<title>Bellwether morning brief, 2025-01-27 (synthetic sample data)</title>" in page
    assert "not real market data" in page and "<strong>Biggest dollar losers:</strong> NVDA" in page
    figures = re.findall(r'<figure data-chart="([^"]+)" data-points="(\d+)">(.*?)</figure>', page, flags=re.S)
    assert len(figures) == 9 and all("<svg" in body and "As of 2025-01-27" in body and int(n) > 0 for _, n, body in figures)
    assert 'data-summary="cards"' in page and "Market value change of all 16 stocks" in page
    assert all(label in page for label in ("trade date", "price (USD)", "puts / calls (volume)", "revenue (USD bn)"))  # titled axes with units
    assert "<td>Market momentum (S&amp;P 500 proxy vs its 125-session average)</td>" in page
    assert "The most active chains" in page and page.count("<td>NVDA</td>") >= 2
    assert "<script" not in page
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:  # the page's text and tables, as the run's artifact
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["morning-brief"])))
    (brief,) = [a for a in artifacts if str(a.flow_run_id) == summary["run_id"]]
    assert brief.data.startswith("# Bellwether brief for 2025-01-27 (synthetic sample data)")
    assert "| Market momentum (S&P 500 proxy vs its 125-session average) |" in brief.data
    assert "### The most active chains" in brief.data and "### By component" in brief.data
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed: the page was not rendered in a browser")
    shot = tmp_path / "brief.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1100,3000", f"file://{page_path}"],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.exists() and shot.stat().st_size > 50_000  # a rendered page, not a blank one
