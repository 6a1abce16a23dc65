"""Opening the DuckDB warehouse: one writer at a time, readers read-only.

DuckDB lets one process write a database file and refuses a second at once. Bellwether puts a
lock file beside the database (`bellwether.duckdb.lock`) that records who holds it, so a second
writer waits a bounded time and then fails with a message naming the holder, instead of a bare
"Could not set lock on file". The lock is an OS advisory lock (`flock`): it is released when
the holding process exits, even after a SIGKILL, so a crash never leaves the warehouse stuck.

Within one process the writer lock is re-entrant: a flow takes it for the whole run and the
tasks it calls open their own connections under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from warehouse import schema

DEFAULT_WAIT_S = 60.0
_POLL_S = 0.2


class WarehouseBusy(RuntimeError):
    """Another writer holds the warehouse and did not let go within the wait."""


class WarehouseMissing(FileNotFoundError):
    """A read was asked of a warehouse file that does not exist yet."""


def is_file_target(target: str | Path) -> bool:
    """A local file path, as opposed to `:memory:` or a remote DuckDB target (md:, s3://...)."""
    text = str(target)
    return text != ":memory:" and "://" not in text and not text.startswith(("md:", "motherduck:"))


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class _HeldLock:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.depth = 0


_held: dict[Path, _HeldLock] = {}
_held_guard = threading.Lock()


def read_holder(db_path: Path) -> dict | None:
    """Who holds the writer lock, as recorded in the lock file (None when nobody wrote one)."""
    try:
        text = lock_path(db_path).read_text()
    except (FileNotFoundError, PermissionError):
        return None
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    since = holder.get("since", "?")
    return f"{holder.get('holder', 'a writer')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {since})"


def current_writer(target: str | Path) -> str | None:
    """Who is writing the warehouse right now, as its lock file names them. None when nobody
    holds the writer lock (the record a killed run leaves behind names a holder whose lock went
    with it) or the target is not a local file."""
    if not is_file_target(target):
        return None
    db_path = Path(target).resolve()
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return describe_holder(read_holder(db_path))
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(db_path: Path, *, holder: str, wait_s: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold the warehouse's writer lock; wait at most `wait_s` seconds for another writer."""
    db_path = Path(db_path).resolve()
    with _held_guard:
        held = _held.get(db_path)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield
        finally:
            with _held_guard:
                held.depth -= 1
        return

    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WarehouseBusy(
                    f"warehouse {db_path} is being written by {describe_holder(read_holder(db_path))}; "
                    f"gave up after waiting {wait_s:g} s. Try again when that run ends, or wait longer "
                    f"(--wait / BELLWETHER_LOCK_WAIT_S)."
                ) from None
            time.sleep(_POLL_S)
    record = {
        "holder": holder,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    entry = _HeldLock(fd)
    entry.depth = 1
    with _held_guard:
        _held[db_path] = entry
    try:
        yield
    finally:
        with _held_guard:
            _held.pop(db_path, None)
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _connect_with_wait(target: str, *, read_only: bool, wait_s: float, db_path: Path | None) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            return duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                who = describe_holder(read_holder(db_path)) if db_path else "another process"
                verb = "read" if read_only else "write"
                raise WarehouseBusy(
                    f"cannot {verb} warehouse {target}: it is being written by {who} "
                    f"(DuckDB: {str(exc).splitlines()[0]}); gave up after {wait_s:g} s."
                ) from None
            time.sleep(_POLL_S)


@contextlib.contextmanager
def writer(target: str | Path, *, holder: str = "bellwether", wait_s: float = DEFAULT_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection with the schema brought up to date, under the writer lock."""
    if not is_file_target(target):
        con = duckdb.connect(str(target))
        try:
            schema.ensure(con)
            yield con
        finally:
            con.close()
        return
    db_path = Path(target).resolve()
    with writer_lock(db_path, holder=holder, wait_s=wait_s):
        con = _connect_with_wait(str(db_path), read_only=False, wait_s=wait_s, db_path=db_path)
        try:
            schema.ensure(con)
            yield con
        finally:
            con.close()


@contextlib.contextmanager
def reader(target: str | Path, *, wait_s: float = 10.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection. Fails clearly when the file is missing or a writer holds it."""
    if is_file_target(target):
        db_path = Path(target).resolve()
        if not db_path.exists():
            raise WarehouseMissing(
                f"no warehouse at {db_path}: run `bellwether run` (or `make run`) first, "
                f"or point --warehouse / BELLWETHER_WAREHOUSE at an existing file"
            )
        con = _connect_with_wait(str(db_path), read_only=True, wait_s=wait_s, db_path=db_path)
    else:
        con = duckdb.connect(str(target), read_only=True)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def run_lock(target: str | Path, *, holder: str, wait_s: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold the writer lock for a whole run (a no-op for targets that are not local files)."""
    if not is_file_target(target):
        yield
        return
    with writer_lock(Path(target), holder=holder, wait_s=wait_s):
        yield
