"""The team set-up, offline: the DuckLake catalog in PostgreSQL and its data files on S3.

PostgreSQL is a real server (Debian's package; `.ci/run` installs it) started for the session
on 127.0.0.1 with a password; S3 is moto's server on 127.0.0.1. The warehouse is created with
`bellwether init`, written by the nightly flow, read by `bellwether query`/`status`/`report`
processes that know only the connection string and the AWS variables (as another machine
would), and kept to one writer by PostgreSQL's advisory lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services
from tests.conftest import ROOT, bellwether_cmd, copy_lake, lake_target, worker_prefect_home
from tests.integration.conftest import fetch, scalar

SELLOFF = dt.date(2025, 1, 27)
HOLD = """
import sys, time
from warehouse.connect import writer
with writer(sys.argv[1], holder="nightly run on machine A"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A PostgreSQL server and an S3 bucket for the module, and the environment of a machine
    that uses them: BELLWETHER_WAREHOUSE, PGPASSWORD and the AWS variables, nothing local."""
    if services.postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server is not installed: .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    with services.postgres() as pg, services.s3() as bucket:
        # A machine of the team keeps its Data Docs and briefs in a folder of its own.
        env = pg.env() | bucket.env() | {"BELLWETHER_ARTIFACTS_DIR": str(tmp_path_factory.mktemp("artifacts"))}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the flows run in this process
        try:
            yield pg, bucket, f"ducklake:postgres:{pg.conninfo}", env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def cli(args, env, timeout=300):
    return subprocess.run(bellwether_cmd() + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def team_night(team, tmp_path_factory):
    """`bellwether init` on the empty catalog database, then the selloff night from the sample
    source through the nightly flow."""
    from flows.nightly import nightly

    pg, bucket, target, env = team
    # The worker's Prefect home, made once (in a new one the first `bellwether run` creates and
    # migrates Prefect's database first: 3-4 s here).
    machine = dict(os.environ) | env | {"BELLWETHER_WAREHOUSE": target, "PYTHONPATH": str(ROOT),
                                        "PREFECT_HOME": worker_prefect_home()}
    refused = cli(["query", "select 1"], machine)
    init = cli(["init", "--data-path", f"s3://{bucket.bucket}/bellwether/"], machine)
    assert init.returncode == 0, init.stdout + init.stderr
    summary = nightly(run_date=SELLOFF, source="sample", warehouse=target, history_sessions=120)
    return machine, summary, refused, init


def test_init_creates_the_lake_and_a_query_before_it_says_what_to_do(team_night, team):
    machine, _, refused, init = team_night
    assert refused.returncode == 3 and "holds no DuckLake: create it with `bellwether init --data-path" in " ".join(refused.stderr.split())
    assert "Created: ducklake:postgres:host=127.0.0.1" in init.stdout and "s3://bellwether/bellwether/" in init.stdout
    again = cli(["init", "--data-path", "s3://bellwether/bellwether/"], machine)
    assert again.returncode == 0 and "Already there" in again.stdout
    elsewhere = cli(["init", "--data-path", "s3://other/place/"], machine)
    assert elsewhere.returncode == 1 and "exists with its data at s3://bellwether/bellwether/" in " ".join(elsewhere.stderr.split())


def test_the_nightly_flow_writes_the_team_warehouse_and_its_files_land_on_s3(team_night, team):
    machine, summary, _, _ = team_night
    pg, bucket, target, _ = team
    assert summary["status"] == "succeeded"
    assert scalar(target, "select count(*) from raw.prices_daily") == 24 * 121
    keys = bucket.keys("bellwether/")
    assert any(k.startswith("bellwether/raw/prices_daily/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith("bellwether/marts/technicals_daily/") for k in keys)
    # The catalog is PostgreSQL's: DuckLake's tables, the runs' snapshots among them.
    import psycopg

    with psycopg.connect(pg.conninfo, password=services.PG_PASSWORD) as db:
        published = db.execute("select count(*) from ducklake_snapshot_changes where commit_message = 'publish'").fetchone()[0]
    assert published == 2  # init and the night
    # The night's pages went to this machine's artifacts folder (never the working directory).
    pages = Path(os.environ["BELLWETHER_ARTIFACTS_DIR"])
    assert summary["report"] == str(pages / "reports" / "brief-2025-01-27.html")
    assert (pages / "data_docs" / summary["run_id"] / "index.html").exists()
    assert not (ROOT / "data_docs").exists() and not (ROOT / "reports").exists()


def test_readers_on_another_machine_query_status_and_report(team_night):
    machine, summary, _, _ = team_night
    r = cli(["query", "--format", "csv", "select ticker, close from marts.technicals_daily where ticker = 'NVDA' and trade_date = '2025-01-27'"], machine)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "ticker,close" and r.stdout.splitlines()[1].startswith("NVDA,")
    r = cli(["status"], machine)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "(DuckLake). Readers see snapshot" in out and f"by run {summary['run_id']}" in out
    r = cli(["report", "--date", "2025-01-27", "--format", "json"], machine)
    assert r.returncode == 0 and json.loads(r.stdout)["biggest_losers"][0]["ticker"] == "NVDA"
    r = cli(["query", "--as-of", summary["run_id"], "select count(*) as n from marts.market_brief"], machine)
    assert r.returncode == 0 and f"by run {summary['run_id']}" in r.stderr


def test_one_writer_across_machines_and_readers_are_never_refused(team_night, team):
    machine, _, _, _ = team_night
    _, _, target, _ = team
    holder = subprocess.Popen([sys.executable, "-c", HOLD, target], cwd=ROOT, env=machine, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli(["run", "--date", "2025-01-28", "--wait", "1"], machine)
        assert r.returncode == 3, r.stdout + r.stderr
        said = " ".join(r.stderr.split())
        assert f"is being written by nightly run on machine A (pid {holder.pid} on " in said and "waiting 1 s" in said
        r = cli(["query", "--format", "csv", "select count(*) as n from raw.prices_daily"], machine)
        assert r.returncode == 0 and r.stdout.splitlines() == ["n", str(24 * 121)], r.stderr
        assert f"Writing now: nightly run on machine A (pid {holder.pid}" in " ".join(cli(["status"], machine).stdout.split())
    finally:
        holder.kill()
        holder.wait()
    # The advisory lock went with its session: the next writer gets in at once.
    r = cli(["maintain", "--wait", "5"], machine)
    assert r.returncode == 0, r.stdout + r.stderr
    assert fetch(target, "select count(*) from audit.runs where status = 'running'") == [(0,)]


def test_a_lake_kept_on_one_machine_moves_into_the_team_catalog(team, tmp_path, friday):
    """Someone who started alone (the default SQLite lake) moves to the team set-up: `init` a new
    PostgreSQL catalog with its files on S3, then `migrate --from ducklake:sqlite:...`. Every raw
    and audit row arrives (the snapshots' history too), the marts are rebuilt and published, and
    the team's readers get the same answers as the old lake gave."""
    pg, bucket, _, env = team
    solo = copy_lake(friday, tmp_path / "solo")  # a night on the bundled universe, shared with other modules
    conninfo = pg.create_database("moved")
    machine = dict(os.environ) | env | {"BELLWETHER_WAREHOUSE": f"ducklake:postgres:{conninfo}", "PYTHONPATH": str(ROOT),
                                        "PREFECT_HOME": worker_prefect_home()}
    r = cli(["init", "--data-path", f"s3://{bucket.bucket}/moved/"], machine)
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli(["migrate", "--from", solo], machine)
    assert r.returncode == 0, r.stdout + r.stderr
    team_target = machine["BELLWETHER_WAREHOUSE"]
    for table in ("raw.prices_daily", "raw.option_quotes", "raw.valuation_snapshots", "audit.load_batches"):
        assert scalar(team_target, f"select count(*) from {table}") == scalar(solo, f"select count(*) from {table}") > 0, table
    sql = ("select ticker, trade_date, close, sma_50, pct_to_sma_50 from marts.technicals_daily "
           "where trade_date = '2025-01-24' order by ticker")
    assert len(fetch(solo, sql)) == 24 and fetch(team_target, sql) == fetch(solo, sql)
    assert any(k.startswith("moved/raw/option_quotes/") for k in bucket.keys("moved/"))
    again = cli(["migrate", "--from", solo], machine)
    assert again.returncode == 1 and "already holds data" in " ".join(again.stderr.split())
