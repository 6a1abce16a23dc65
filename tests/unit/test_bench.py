"""The benchmark's own machinery at a small scale, on the default storage (a DuckLake): its
stages run, its night starts where a nightly's would, readers answer during a write, and the
pandas peer gives the SQL marts' numbers (the comparison can fail). How fast anything is
stays in bench/ (make bench), never asserted here."""

import pytest

from bench import peer, stages
from bench.data import BenchMarket
from sources import calendar


@pytest.fixture(scope="module")
def bench_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("bench")
    market = BenchMarket(n_tickers=30, years=3, snapshot_sessions=5)
    loaded = stages.stage_load(work, market)
    stages.rename(work, "load", stages.LOADED)
    built = stages.stage_full_build(work, market)
    stages.rename(work, "full", stages.BUILT)
    return work, market, loaded, built


def test_the_load_stage_loads_every_chunk_of_the_market(bench_work):
    _, market, loaded, built = bench_work
    sessions = len(market.sessions)
    assert loaded["by_dataset"]["prices_daily"]["rows"] == 30 * sessions
    assert loaded["by_dataset"]["putcall_daily"]["rows"] == 6 * sessions
    assert set(loaded["by_dataset"]) == {"prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots"}
    assert built["models"]["marts.technicals_daily"]["rows"] == 30 * sessions


def test_the_incremental_night_builds_just_its_night_not_years_back(bench_work):
    work, market, _, _ = bench_work
    night = stages.stage_incremental(work, market)
    # The look-back's 5 sessions come back unchanged and funds have no fundamentals (their
    # history window asks three years back): neither pulls the build back from the night.
    assert [(t["table"], t["window"].split("..")[0]) for t in night["loaded"] if t["table"] == "raw.prices_daily"] == [
        ("raw.prices_daily", str(calendar.sessions_back(market.next_session, 5)))]
    assert night["since"] == str(market.next_session)
    assert night["models"]["marts.technicals_daily"]["mode"] == "incremental"
    assert night["models"]["marts.technicals_daily"]["rows_written"] == 30
    assert night["models"]["marts.technicals_daily"]["rows"] == 30 * (len(market.sessions) + 1)


def test_the_full_checks_stage_runs_every_marts_checks_over_its_whole_history(bench_work):
    from warehouse import checks

    work, _, _, _ = bench_work
    result = stages.stage_full_checks(work, bench_work[1])
    marts = [cf for rel, cf in checks.discover_checks().items() if rel.startswith("marts.")]
    assert result["checks"] == sum(len(cf.expectations) + len(cf.asserts) for cf in marts)
    assert set(result["by_table"]) == {cf.table for cf in marts}


@pytest.fixture(scope="module")
def peer_run(bench_work):
    """The peer stage, run once for the tests that read its result or its warehouse (no test
    relies on another having run first)."""
    work, market, _, _ = bench_work
    return work, stages.stage_peer(work, market)


def test_the_pandas_peer_gives_the_sql_marts_numbers(bench_work, peer_run):
    _, market, _, _ = bench_work
    _, result = peer_run
    for peer_schema in ("pandas_peer", "polars_peer"):  # both peers give the SQL's numbers, cell for cell
        assert result["compared"][f"{peer_schema}.technicals_daily"]["rows"] == 30 * len(market.sessions)
        assert result["compared"][f"{peer_schema}.putcall_sentiment"]["rows"] == 6 * len(market.sessions)


def test_the_peer_comparison_names_a_column_that_differs(peer_run):
    from warehouse.connect import writer

    work, _ = peer_run
    with writer(stages.target(work, "peer")) as con:
        con.execute("update pandas_peer.technicals_daily set sma_50 = sma_50 * 1.001 where ticker = 'NVDA'")
        with pytest.raises(AssertionError, match="sma_50"):
            peer.compare(con, "technicals_daily", ["ticker", "trade_date"])
        con.execute("update polars_peer.putcall_sentiment set regime = 'calm' where scope = 'total' and regime = 'neutral'")
        con.execute("delete from polars_peer.technicals_daily where ticker = 'SPY'")
        with pytest.raises(AssertionError, match="putcall_sentiment: polars_peer and SQL differ in {'regime': "):
            peer.compare(con, "putcall_sentiment", ["trade_date", "scope"], peer="polars_peer")
        with pytest.raises(AssertionError, match="technicals_daily: .* rows are in one table and not the other"):
            peer.compare(con, "technicals_daily", ["ticker", "trade_date"], peer="polars_peer")


def test_readers_answer_while_the_bench_writes_a_night(bench_work):
    work, market, _, _ = bench_work
    result = stages.stage_readers(work, market)
    assert result["attempts_during_write"] >= 1 and result["refused"] == 0
    assert result["answered"] == result["attempts_during_write"]


def test_the_nights_stage_writes_nights_then_compacts(bench_work, monkeypatch):
    work, market, _, _ = bench_work
    monkeypatch.setenv(stages.NIGHTS_ENV, "3")
    result = stages.stage_nights(work, market)
    assert result["nights"] == 3
    assert result["files_after"]["files"] < result["files_before"]["files"]


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # yfinance's own inplace calls
def test_the_live_nightly_stage_runs_the_night_through_the_fake_yahoo_and_counts_its_requests(bench_work, prefect_harness, yf_isolated):
    """No latency and no random failures here (speed is the benchmark's business): the night
    ends partial naming the fake's delisted and broken tickers, and the counts add up."""
    work, market, _, _ = bench_work
    result = stages.stage_live_nightly(work, market, "tuned", fake={"seed": 1})
    # The last five of the market's six synthetic stocks (24 bundled names + 6).
    delisted, broken = ["SYN002", "SYN003", "SYN004"], ["SYN005", "SYN006"]
    assert (result["delisted"], result["broken"]) == (delisted, broken)
    assert result["status"] == "partial"
    assert result["failed"]["prices_daily"] == {"retryable": broken, "delisted": delisted}
    assert result["failed"]["option_quotes"] == {"retryable": broken}
    # Every ticker's prices were asked for at least once, and every Yahoo dataset was fetched.
    assert result["requests_by_route"]["chart"] >= len(market.source.universe) == 30
    assert {"chart", "options", "quoteSummary", "timeseries"} <= set(result["requests_by_route"])
    # Every data request of a broken ticker is answered 500 and asked again (by yfinance, then by
    # the source's retries) except each call's last; nothing else fails without latency or shares.
    assert result["retries"] > 0 and set(result["failed_answers"]) <= {"500", "404"}
    assert result["loaded"]["raw.prices_daily"] == (30 - 5) * 6  # the look-back's 5 sessions and the night
