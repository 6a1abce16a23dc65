"""Every `bellwether` command through a subprocess, as a user runs it."""

import datetime as dt
import json
import subprocess
import sys

import pytest

from sources.sample import SampleSource
from tests.conftest import ROOT, bellwether_cmd, lake_target, publish
from tests.integration.conftest import SIX_TICKERS
from warehouse.connect import writer
from warehouse.load import load_batch

HOLD = """
import sys, time
from warehouse.connect import writer
with writer(sys.argv[1], holder="nightly run test-holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def cli(args, env, timeout=240):
    return subprocess.run(bellwether_cmd() + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def small_warehouse(cli_env):
    """A warehouse with a week of sample prices, loaded without Prefect and published."""
    path = cli_env["BELLWETHER_WAREHOUSE"]
    batch = SampleSource().prices(["SPY", "NVDA"], dt.date(2025, 1, 21), dt.date(2025, 1, 27))
    with writer(path) as con:
        load_batch(con, batch, source="sample", run_id="fixture", loaded_at=dt.datetime(2025, 1, 27, 23, tzinfo=dt.UTC))
        publish(con)
    return path


def test_help_lists_the_commands(cli_env):
    r = cli(["--help"], cli_env)
    assert r.returncode == 0
    for command in ("run", "build", "query"):
        assert command in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--source", "files"], "the files source needs a folder: pass --path DIR"),
        (["run", "--date", "2025-13-01"], "--date '2025-13-01' is not a date"),
        (["run", "--source", "files", "--path", "/no/such/folder"], "/no/such/folder"),
    ],
)
def test_run_refuses_bad_usage_clearly(cli_env, args, message):
    r = cli(args, cli_env)
    assert r.returncode == 2, r.stderr
    assert message in " ".join((r.stdout + r.stderr).split())
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "providers, message",
    [
        ('{"prices_daily": "bloomberg"}', "unknown provider 'bloomberg' for prices_daily"),
        ('{"quotes": "yahoo"}', "unknown dataset 'quotes'"),
        ("not json", "BELLWETHER_LIVE_PROVIDERS"),
    ],
)
def test_a_bad_live_provider_mapping_is_refused(cli_env, providers, message):
    r = cli(["run", "--source", "live"], dict(cli_env, BELLWETHER_LIVE_PROVIDERS=providers))
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_query_prints_csv_and_json(cli_env, small_warehouse):
    r = cli(["query", "--format", "csv", "select ticker, count(*) as n from raw.prices_daily group by 1 order by 1"], cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ticker,n", "NVDA,5", "SPY,5"]
    r = cli(["query", "--format", "json", "select max(trade_date) as last from raw.prices_daily"], cli_env)
    assert json.loads(r.stdout)[0]["last"].startswith("2025-01-27")
    r = cli(["query", "select ticker, close from raw.prices_daily where trade_date = '2025-01-27' order by 1"], cli_env)
    assert r.returncode == 0 and "NVDA" in r.stdout and "SPY" in r.stdout


def test_bad_query_gets_duckdbs_message_not_a_traceback(cli_env, small_warehouse):
    r = cli(["query", "select * from raw.no_such_table"], cli_env)
    assert r.returncode == 1
    assert "Catalog Error" in r.stderr and "no_such_table" in r.stderr
    assert "Traceback" not in r.stderr


def test_query_is_read_only(cli_env, small_warehouse):
    r = cli(["query", "delete from raw.prices_daily"], cli_env)
    assert r.returncode == 1 and "read-only" in r.stderr.lower()


def test_query_without_a_warehouse_says_what_to_do(cli_env):
    r = cli(["query", "select 1"], cli_env)
    assert r.returncode == 3 and "run `bellwether run`" in " ".join(r.stderr.split())


def test_second_writer_is_refused_cleanly_and_readers_are_not(cli_env, small_warehouse):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, small_warehouse], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = dict(cli_env, BELLWETHER_LOCK_WAIT_S="1")
        r = cli(["run", "--date", "2025-01-27"], env)
        assert r.returncode == 3, r.stdout + r.stderr
        err = " ".join(r.stderr.split())
        assert "is being written by nightly run test-holder" in err and f"pid {holder.pid}" in err
        # Readers of a DuckLake answer while the writer holds it, and status names the writer.
        r = cli(["query", "--format", "csv", "select count(*) as n from raw.prices_daily"], cli_env)
        assert r.returncode == 0 and r.stdout.splitlines() == ["n", "10"], r.stderr
        r = cli(["status"], cli_env)
        assert r.returncode == 0 and f"Writing now: nightly run test-holder (pid {holder.pid}" in " ".join(r.stdout.split())
    finally:
        holder.kill()
        holder.wait()
    # Nothing was written, nothing corrupted: the fixture's rows are intact and readable.
    r = cli(["query", "--format", "csv", "select count(*) as n from raw.prices_daily"], cli_env)
    assert r.stdout.splitlines() == ["n", "10"]
    r = cli(["build"], cli_env)
    assert r.returncode == 0 and "marts.technicals_daily" in r.stdout


def test_build_checks_each_table_and_checks_shows_the_results(cli_env, small_warehouse):
    # `build` runs the build-stage checks (a week of prices: no error fails) and records them.
    r = cli(["build"], cli_env)
    assert r.returncode == 0, r.stderr
    assert "Checks:" in r.stdout and "error check(s) failing" in r.stdout and "Data Docs:" in r.stdout
    r = cli(["checks", "--format", "csv"], cli_env)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].startswith("stage,table,check,severity,action,result")
    assert any(",marts.technicals_daily,expect_compound_columns_to_be_unique:ticker+trade_date,error,block,pass," in x for x in rows)
    # A run id that never ran checks is said plainly.
    r = cli(["checks", "--run", "no-such-run"], cli_env)
    assert r.returncode == 1 and "no check results for run no-such-run (no such run)" in " ".join(r.stderr.split())


def test_status_shows_freshness_runs_and_quarantine(cli_env, small_warehouse):
    from sources import calendar

    with writer(small_warehouse) as con:
        con.execute(
            "insert into audit.quarantine (quarantine_id, run_id, table_name, check_name, reason, quarantined_at) "
            "values (1, 'r1', 'raw.putcall_daily', 'ratio_is_a_reading', 'failed ratio_is_a_reading', now())"
        )
        publish(con, "r1")
    r = cli(["status"], cli_env)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    expected = calendar.last_completed_session(dt.datetime.now(dt.UTC))
    behind = len(calendar.sessions(dt.date(2025, 1, 27), expected)) - 1
    assert f"latest completed NYSE session: {expected}" in out
    assert f"raw.prices_daily │ 10 │ 2025-01-27 │ {behind} │" in out
    assert "raw.putcall_daily │ ratio_is_a_reading │ 1 │ r1" in out


def test_run_then_report_the_morning_brief(cli_env, tmp_path):
    universe = tmp_path / "universe.csv"
    universe.write_text(SIX_TICKERS)
    env = dict(cli_env, BELLWETHER_UNIVERSE=str(universe))
    r = cli(["run", "--date", "2025-01-27", "--history-sessions", "120"], env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "Bellwether nightly 2025-01-27 (sample): succeeded" in out and "marts.market_brief" in out

    r = cli(["report", "--date", "2025-01-27", "--format", "markdown"], env)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert text.startswith("# Bellwether brief for 2025-01-27 (synthetic sample data)")
    for section in ("## Headline moves", "## Support levels", "## Put/call (CBOE)", "## The largest names against their 50-day average",
                    "## Valuation", "## Options sentiment", "## Fear & greed"):
        assert section in text
    assert "**Biggest dollar losers:** NVDA" in text  # the synthetic selloff's biggest loser
    r = cli(["report", "--format", "json"], env)  # default: the latest brief
    brief = json.loads(r.stdout)
    assert brief["trade_date"].startswith("2025-01-27") and brief["biggest_losers"][0]["ticker"] == "NVDA"
    r = cli(["report", "--date", "2025-01-27", "--html", "--out", str(tmp_path / "pages")], env)
    assert r.returncode == 0, r.stderr
    page = tmp_path / "pages" / "brief-2025-01-27.html"
    assert f"Report: {page}" in " ".join(r.stdout.split()) and page.read_text().count("<svg") == 8
    # A day without a brief is said plainly.
    r = cli(["report", "--date", "2025-01-25"], env)
    assert r.returncode == 1 and "no brief for 2025-01-25: the NYSE was closed that day" in " ".join(r.stderr.split())
    r = cli(["report"], dict(env, BELLWETHER_WAREHOUSE=lake_target(tmp_path / "none")))
    assert r.returncode == 3 and "no warehouse at" in r.stderr
