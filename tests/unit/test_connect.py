"""One writer at a time, a clear message naming the holder, and a lock that dies with its process."""

import os
import signal
import subprocess
import sys
import time

import pytest

from warehouse.connect import WarehouseBusy, WarehouseMissing, read_holder, reader, writer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD = """
import sys, time
from warehouse.connect import writer
with writer(sys.argv[1], holder="nightly run test-holder") as con:
    con.execute("create table if not exists raw.marker (x int)")
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held_warehouse(warehouse_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield warehouse_path, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_writer_waits_then_fails_naming_the_holder(held_warehouse):
    path, proc = held_warehouse
    t0 = time.monotonic()
    with pytest.raises(WarehouseBusy) as exc:
        with writer(path, holder="backfill", wait_s=1.0):
            pass
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 10
    msg = str(exc.value)
    assert "nightly run test-holder" in msg and f"pid {proc.pid}" in msg and "waiting 1 s" in msg
    assert read_holder(path)["pid"] == proc.pid


def test_reader_is_refused_clearly_while_a_writer_holds(held_warehouse):
    path, proc = held_warehouse
    with pytest.raises(WarehouseBusy, match="cannot read warehouse .* being written by nightly run test-holder"):
        with reader(path, wait_s=0.5):
            pass


def test_lock_is_released_when_the_holder_is_killed(held_warehouse):
    path, proc = held_warehouse
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with writer(path, holder="after the crash", wait_s=5) as con:
        assert con.execute("select count(*) from raw.marker").fetchone()[0] == 0
        assert read_holder(path)["holder"] == "after the crash"


def test_waiting_writer_gets_in_when_the_holder_finishes(warehouse_path):
    # Take the lock in a child process for ~1 s; our writer waits for it rather than failing.
    code = "import sys,time\nfrom warehouse.connect import writer_lock\nfrom pathlib import Path\nwith writer_lock(Path(sys.argv[1]), holder='short'):\n print('held', flush=True); time.sleep(1)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(warehouse_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with writer(warehouse_path, holder="patient", wait_s=20) as con:
        assert con.execute("select 1").fetchone() == (1,)
    proc.wait()


def test_lock_is_reentrant_within_a_process(warehouse_path):
    with writer(warehouse_path, holder="flow") as outer:
        outer.execute("create table raw.t (x int)")
        with writer(warehouse_path, holder="task") as inner:
            inner.execute("insert into raw.t values (1)")
        assert outer.execute("select count(*) from raw.t").fetchone()[0] == 1
    assert read_holder(warehouse_path) is None  # released and cleared


def test_reader_of_a_missing_warehouse_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseMissing, match="no warehouse at .*nope.duckdb: run `bellwether run`"):
        with reader(tmp_path / "nope.duckdb"):
            pass
