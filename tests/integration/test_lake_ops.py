"""Operating a DuckLake warehouse: compaction that changes no answer and keeps time travel, and
moving an earlier single-file warehouse into the lake (`bellwether migrate`), including a file
written by DuckDB 2.0, which this Bellwether's DuckDB cannot open."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from flows.nightly import nightly
from tests.conftest import ROOT, bellwether_cmd, lake_target
from tests.integration.conftest import fetch, scalar
from tests.integration.test_racing_writers import checksums, compare, integrity_problems
from warehouse import lake
from warehouse.connect import LATEST, reader, writer

NIGHTS = [dt.date(2025, 1, 24), dt.date(2025, 1, 27)]


def cli(args, env, timeout=300):
    return subprocess.run(bellwether_cmd() + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def nights(tmp_path_factory, six_friday):
    """Two nights on the sample source (six names) in a lake: Friday's, shared with other
    modules, and Monday's after it; and Friday's night alone in a single DuckDB file."""
    from tests.conftest import copy_lake

    friday, universe = six_friday
    folder = tmp_path_factory.mktemp("nights")
    target, single = copy_lake(friday, folder), str(folder / "single.duckdb")
    args = dict(source="sample", universe=universe, history_sessions=60)
    runs = [fetch(target, "select run_id from audit.runs where flow = 'nightly'")[0][0]]
    runs.append(nightly(run_date=NIGHTS[1], warehouse=target, **args)["run_id"])
    nightly(run_date=NIGHTS[0], warehouse=single, **args)
    return target, single, runs, universe


def test_maintenance_merges_small_files_and_changes_no_answer_nor_any_earlier_run(nights, tmp_path):
    from tests.conftest import copy_lake

    target, _, runs, _ = nights
    target = copy_lake(target, tmp_path)
    sums = checksums(target)
    with reader(target, at=runs[0]) as con:
        first_night = con.execute("select * from marts.market_brief order by all").fetchall()
    with reader(target, at=LATEST) as con:
        files_before = lake.file_counts(con)
        published = [p["snapshot_id"] for p in lake.published_snapshots(con)]
        snapshots_before = con.execute("select count(*) from bellwether.snapshots()").fetchone()[0]
    with writer(target) as con:
        done = lake.maintain(con, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))  # past the grace period
    assert done["files_after"] < done["files_before"], done
    with reader(target, at=LATEST) as con:
        files_after = lake.file_counts(con)
        left = [r[0] for r in con.execute("select snapshot_id from bellwether.snapshots() order by 1").fetchall()]
    # Fewer files for every table the nights left in several (a night's few rows of a mart may
    # stay inlined in the catalog instead: the flush writes those), the same rows in every table.
    scattered = sorted(t for t, c in files_before.items() if c["files"] > 1)
    assert "raw.option_quotes" in scattered, files_before
    assert [t for t in scattered if files_after[t]["files"] >= files_before[t]["files"]] == [], (files_before, files_after)
    assert checksums(target) == sums
    # Time travel keeps every run's publication; the intermediate commits went.
    assert set(published) <= set(left) and len(left) < snapshots_before
    with reader(target, at=runs[0]) as con:
        assert con.execute("select * from marts.market_brief order by all").fetchall() == first_night
    assert integrity_problems(target) == []


def test_maintain_command_and_keep_days(nights, tmp_path, cli_env):
    from tests.conftest import copy_lake

    target = copy_lake(nights[0], tmp_path)
    env = dict(cli_env, BELLWETHER_WAREHOUSE=target)
    r = cli(["maintain", "--grace-hours", "0"], env)
    assert r.returncode == 0, r.stderr
    assert "merged tables" in r.stdout and "files after" in r.stdout
    # --keep-days 0: every publication but the newest expires; time travel stops there.
    r = cli(["maintain", "--grace-hours", "0", "--keep-days", "0"], env)
    assert r.returncode == 0, r.stderr
    r = cli(["query", "--as-of", nights[2][0], "select 1"], env)  # the first night
    assert r.returncode == 1 and "is not available" in r.stderr
    r = cli(["query", "--format", "csv", "select count(*) as n from marts.market_brief"], env)
    assert r.returncode == 0 and r.stdout.splitlines()[1] == str(scalar(nights[0], "select count(*) from marts.market_brief"))
    single = dict(cli_env, BELLWETHER_WAREHOUSE=nights[1])
    r = cli(["maintain"], single)
    assert r.returncode == 2 and "a single DuckDB file needs none" in " ".join(r.stderr.split())


def test_migrate_moves_a_single_file_warehouse_into_the_lake(nights, tmp_path, cli_env):
    _, single, _, universe = nights
    target = lake_target(tmp_path)
    env = dict(cli_env, BELLWETHER_WAREHOUSE=target)
    r = cli(["migrate", "--from", single], env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "raw.prices_daily │ 366" in out and "audit.runs │ 1" in out  # 6 tickers x 61 sessions; one night
    # Every raw and audit row as it was (lineage included), the marts rebuilt equal.
    raw_audit = [f"raw.{t}" for t in ("prices_daily", "option_quotes", "putcall_daily", "fundamentals_quarterly",
                                       "valuation_snapshots", "universe")]
    for table in raw_audit + ["audit.load_batches", "audit.check_results", "audit.fetch_outcomes", "audit.runs"]:
        mine = "" if table.startswith("raw.") else " where run_id not like 'migrate-%'"  # the migration's own run
        columns = "* exclude (snapshot_id)" if table == "audit.runs" else "*"
        with reader(single) as old, reader(target) as new:
            assert sorted(old.execute(f"select {columns} from {table}").fetchall(), key=repr) == sorted(
                new.execute(f"select {columns} from {table}{mine}").fetchall(), key=repr), table
    assert compare(target, single).differences == []
    runs = fetch(target, "select flow, status from audit.runs order by started_at")
    assert runs == [("nightly", "succeeded"), ("migrate", "succeeded")]
    # The migrated lake takes the next night as any other.
    assert nightly(run_date=dt.date(2025, 1, 28), source="sample", warehouse=target, universe=str(universe))["status"] == "succeeded"
    # Into a lake that holds data: refused, nothing changed.
    r = cli(["migrate", "--from", single], env)
    assert r.returncode == 1 and "already holds data" in r.stderr


def test_migrate_reads_a_warehouse_written_by_duckdb_2(nights, tmp_path, cli_env):
    """Bellwether pinned DuckDB 2.0 before it moved to DuckLake (whose extensions exist up to
    DuckDB 1.5.5). Such a file is exported by DuckDB 2.0 itself, run once through uv."""
    from warehouse.migrate import _uv, written_by

    _, single, _, _ = nights
    old = tmp_path / "v2.duckdb"
    copy = ("import sys, duckdb; c = duckdb.connect(); c.execute(f\"attach '{sys.argv[1]}' as src (read_only)\"); "
            "c.execute(f\"attach '{sys.argv[2]}' as dst\"); c.execute('copy from database src to dst')")
    made = subprocess.run([_uv(), "run", "--quiet", "--no-project", "--isolated", "--with", "duckdb==2.0.0", "python", "-c", copy,
                           single, str(old)], capture_output=True, text=True, timeout=600)
    if made.returncode != 0 and "Failed to fetch" in made.stderr and not __import__("os").environ.get("CI"):
        pytest.skip(f"uv cannot fetch DuckDB 2.0.0 here: {made.stderr[-200:]}")
    assert made.returncode == 0, made.stderr
    assert written_by(old) == "v2.0.0"
    import duckdb

    with pytest.raises(duckdb.IOException, match="newer version"):
        duckdb.connect(str(old), read_only=True)
    target = lake_target(tmp_path)
    r = cli(["migrate", "--from", str(old)], dict(cli_env, BELLWETHER_WAREHOUSE=target), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert compare(target, single).differences == []


def test_a_run_on_the_default_lake_beside_an_old_file_asks_for_a_migration(tmp_path, cli_env):
    (tmp_path / "bellwether.duckdb").write_bytes(b"")
    r = cli(["run"], dict(cli_env, BELLWETHER_WAREHOUSE=lake_target(tmp_path)))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "bellwether migrate --from" in " ".join(r.stderr.split())
    assert not (tmp_path / "bellwether.sqlite").exists()


@pytest.mark.parametrize("kind", ["ducklake", "duckdb-file"])
def test_init_creates_an_empty_published_warehouse(tmp_path, cli_env, kind):
    target = lake_target(tmp_path) if kind == "ducklake" else str(tmp_path / "w.duckdb")
    env = dict(cli_env, BELLWETHER_WAREHOUSE=target)
    r = cli(["init"], env)
    assert r.returncode == 0 and "Created" in r.stdout, r.stdout + r.stderr
    r = cli(["query", "--format", "csv", "select count(*) as n from raw.prices_daily"], env)
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "0"], r.stderr
    assert cli(["init"], env).stdout.startswith("Already there")
    r = cli(["init", "--data-path", "/elsewhere"], env)
    assert (r.returncode == 2) == (kind == "ducklake")
    _ = sys  # noqa: F841
