"""One writer at a time, a clear message naming the holder, and a lock that dies with its
process, on both storages; on a DuckLake, readers that answer at once while a writer holds it
and see only what runs published."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from tests.conftest import lake_catalog, lake_target, publish
from warehouse import lake
from warehouse.connect import (
    LATEST, AsOfError, WarehouseBusy, WarehouseMissing, current_writer, read_holder, reader, writer,
)
from warehouse.target import TargetError, parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD = """
import sys, time
from warehouse.connect import writer
with writer(sys.argv[1], holder="nightly run test-holder") as con:
    con.execute("create table if not exists raw.marker (x int)")
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture(params=["ducklake", "duckdb-file"])
def target(request, tmp_path) -> str:
    return lake_target(tmp_path) if request.param == "ducklake" else str(tmp_path / "bellwether.duckdb")


def lock_owner_file(target: str):
    return parse(target).path


@pytest.fixture
def held(target):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, target], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield target, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_writer_waits_then_fails_naming_the_holder(held):
    target, proc = held
    t0 = time.monotonic()
    with pytest.raises(WarehouseBusy) as exc:
        with writer(target, holder="backfill", wait_s=1.0):
            pass
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 10
    msg = str(exc.value)
    assert "nightly run test-holder" in msg and f"pid {proc.pid}" in msg and "waiting 1 s" in msg
    assert read_holder(lock_owner_file(target))["pid"] == proc.pid
    assert current_writer(target).startswith(f"nightly run test-holder (pid {proc.pid} on ")


def test_a_file_reader_is_refused_clearly_while_a_writer_holds(tmp_path):
    target = str(tmp_path / "bellwether.duckdb")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, target], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match="cannot read warehouse .* being written by nightly run test-holder"):
            with reader(target, wait_s=0.5):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_a_lake_reader_answers_at_once_while_a_writer_holds_it(tmp_path):
    target = lake_target(tmp_path)
    with writer(target) as con:
        con.execute("create table raw.marker (x int)")
        con.execute("insert into raw.marker values (1), (2)")
        publish(con, "first")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, target], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with reader(target, wait_s=0) as con:
            assert con.execute("select count(*) from raw.marker").fetchone()[0] == 2
        assert time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()


def test_lock_is_released_when_the_holder_is_killed(held):
    target, proc = held
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_writer(target) is None  # the record a killed run leaves names nobody alive
    with writer(target, holder="after the crash", wait_s=5) as con:
        assert con.execute("select count(*) from raw.marker").fetchone()[0] == 0
        assert read_holder(lock_owner_file(target))["holder"] == "after the crash"


def test_waiting_writer_gets_in_when_the_holder_finishes(target):
    # Take the lock in a child process for ~1 s; our writer waits for it rather than failing.
    code = "import sys,time\nfrom warehouse.connect import run_lock\nwith run_lock(sys.argv[1], holder='short'):\n print('held', flush=True); time.sleep(1)"
    proc = subprocess.Popen([sys.executable, "-c", code, target], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with writer(target, holder="patient", wait_s=20) as con:
        assert con.execute("select 1").fetchone() == (1,)
    proc.wait()


def test_lock_is_reentrant_within_a_process(target):
    with writer(target, holder="flow") as outer:
        outer.execute("create table raw.t (x int)")
        with writer(target, holder="task") as inner:
            inner.execute("insert into raw.t values (1)")
        assert outer.execute("select count(*) from raw.t").fetchone()[0] == 1
    assert read_holder(lock_owner_file(target)) is None  # released and cleared


@pytest.mark.parametrize("kind", ["duckdb-file", "ducklake"])
def test_reader_of_a_missing_warehouse_says_what_to_do(tmp_path, kind):
    target = str(tmp_path / "nope.duckdb") if kind == "duckdb-file" else lake_target(tmp_path, "nope")
    with pytest.raises(WarehouseMissing, match="no warehouse at .*nope.(duckdb|sqlite): run `bellwether run`"):
        with reader(target):
            pass
    assert not (tmp_path / "nope.sqlite").exists()  # reading creates nothing


def test_a_lake_reader_sees_only_what_a_run_published(tmp_path):
    """Commits a run makes as it goes are durable but not visible: readers read the snapshot the
    last finished run published, and `LATEST` (for plans and tests) the newest commit."""
    target = lake_target(tmp_path)
    with writer(target) as con:
        con.execute("create table raw.t (x int)")
    with pytest.raises(WarehouseMissing, match="no run has published to .* yet"):
        with reader(target):
            pass
    with writer(target) as con:
        con.execute("insert into raw.t values (1)")
        first = publish(con, "run-1")
        con.execute("insert into raw.t values (2)")  # a run under way: committed, not published
        con.execute("insert into raw.t values (3)")
        with reader(target) as r:
            assert r.execute("select count(*) from raw.t").fetchone()[0] == 1
            assert lake.snapshot_info(r) | {"at": None} == {"snapshot_id": first, "at": None, "published": True, "run_id": "run-1"}
        with reader(target, at=LATEST) as r:
            assert r.execute("select count(*) from raw.t").fetchone()[0] == 3
        second = publish(con, "run-2")
    assert second > first
    with reader(target) as r:
        assert r.execute("select count(*) from raw.t").fetchone()[0] == 3
        runs = r.execute("select run_id, status, snapshot_id from audit.runs order by snapshot_id").fetchall()
    assert runs == [("run-1", "succeeded", first), ("run-2", "succeeded", second)]
    # The snapshot a run's publication got is the one recorded: the commit tagged with it.
    with reader(target, at=LATEST) as r:
        tagged = {p["run_id"]: p["snapshot_id"] for p in lake.published_snapshots(r)}
    assert tagged == {"run-1": first, "run-2": second}


def test_as_of_names_a_run_or_a_time(tmp_path):
    target = lake_target(tmp_path)
    with writer(target) as con:
        con.execute("create table raw.t (x int)")
        con.execute("insert into raw.t values (1)")
        publish(con, "run-1")
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    with writer(target) as con:
        con.execute("insert into raw.t values (2)")
        publish(con, "run-2")

    def count(at):
        with reader(target, at=at) as r:
            return r.execute("select count(*) from raw.t").fetchone()[0]

    assert (count(None), count("run-1"), count("run-2"), count(between.isoformat())) == (2, 1, 2, 1)
    naive_utc = between.replace(tzinfo=None).isoformat()  # a time without an offset is UTC
    assert count(naive_utc) == 1
    with pytest.raises(AsOfError, match="neither a run id in audit.runs nor a time"):
        count("no-such-run")
    with pytest.raises(AsOfError, match="nothing was published on or before 2001-01-01"):
        count("2001-01-01")
    with pytest.raises(AsOfError, match="time travel needs a DuckLake warehouse"):
        with reader(tmp_path / "w.duckdb", at="run-1"):
            pass


def test_a_run_that_never_finished_has_no_snapshot_to_travel_to(tmp_path):
    from warehouse import audit

    target = lake_target(tmp_path)
    with writer(target) as con:
        audit.start_run(con, run_id="killed", flow="backfill", parameters={}, started_at=dt.datetime.now(dt.UTC))
        publish(con, "later")  # a later run publishes the killed one's row as it was: running
    with pytest.raises(AsOfError, match="run killed \\(running\\) published no snapshot"):
        with reader(target, at="killed"):
            pass


@pytest.mark.parametrize(
    "text, message",
    [
        ("ducklake:mydb.ducklake", "A DuckDB-file catalog is not offered"),
        ("ducklake:postgres:host=db password=secret", "holds a password"),
        ("ducklake:postgres:postgresql://bw:secret@db/bellwether", "holds a password"),
        ("", "is empty"),
    ],
)
def test_a_target_that_cannot_be_used_is_refused_saying_why(text, message):
    with pytest.raises(TargetError, match=message):
        parse(text)


def test_targets_are_made_absolute_and_passwords_never_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = parse("ducklake:sqlite:w/bellwether.sqlite")
    assert str(t) == f"ducklake:sqlite:{tmp_path}/w/bellwether.sqlite"
    assert t.default_data_path == f"{tmp_path}/w/bellwether.files/" and t.local_folder == tmp_path / "w"
    assert parse("w.duckdb").path == tmp_path / "w.duckdb"
    pg = parse("ducklake:postgres:host=db dbname=bellwether user=bw")
    assert pg.path is None and pg.lock_file is None and pg.describe() == "ducklake:postgres:host=db dbname=bellwether user=bw"


def test_a_new_lake_beside_an_earlier_single_file_warehouse_is_refused(tmp_path):
    duckdb.connect(str(tmp_path / "bellwether.duckdb")).close()
    with pytest.raises(WarehouseMissing, match="bellwether migrate --from .*bellwether.duckdb"):
        with writer(lake_target(tmp_path)):
            pass
    assert not lake_catalog(lake_target(tmp_path)).exists()


def test_a_lake_copied_elsewhere_still_finds_its_files(tmp_path):
    import shutil

    target = lake_target(tmp_path / "a")
    with writer(target) as con:
        con.execute("create table raw.t as select range as x from range(1000)")
        publish(con)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    with reader(lake_target(tmp_path / "b")) as r:
        assert r.execute("select sum(x) from raw.t").fetchone()[0] == 499500


def test_a_plain_attach_of_a_copied_or_moved_lake_reads_its_own_files(tmp_path):
    """A notebook attaches without a DATA_PATH, so the catalog's own record of where its files
    are must follow the warehouse: after copy_sqlite_lake, and after a folder moved by hand
    once a writer (a night) has opened it."""
    import shutil

    target = lake_target(tmp_path / "a")
    with writer(target) as con:
        con.execute("create table raw.t as select range as x from range(1000)")
        publish(con)
    copied = lake.copy_sqlite_lake(parse(target), tmp_path / "c" / "bellwether.sqlite")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    moved = parse(lake_target(tmp_path / "b"))
    with writer(lake_target(tmp_path / "b")):
        pass
    for t in (copied, moved):
        con = lake.new_connection()
        lake.load_extensions(con, lake.extensions_for(t, None))
        con.execute(f"attach 'ducklake:sqlite:{t.path}' as notebook (read_only)")
        assert con.execute("select sum(x) from notebook.raw.t").fetchone()[0] == 499500, t.path
        con.close()
