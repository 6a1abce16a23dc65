"""Opening the warehouse: one writer at a time; readers, on a DuckLake, never wait.

Writers. One process writes at a time, whatever the storage: a run's loads are keyed upserts
that rely on nobody else inserting the same keys meanwhile (DuckLake has no primary keys). On a
local target (a DuckDB file, or a DuckLake with a SQLite catalog) a lock file beside it
(`bellwether.sqlite.lock`) records who holds it; on a DuckLake with a PostgreSQL catalog the
lock is an advisory lock in that database (warehouse/pglock.py), so writers on different
machines queue too. A second writer waits a bounded time and then fails with a message naming
the holder. Both locks die with their process, so a crash never leaves the warehouse locked.
Within one process the lock is re-entrant: a flow takes it for the whole run and the tasks it
calls open their own connections under it.

Readers. On a DuckLake a reader attaches read-only at the *published* snapshot (the state the
last finished run published, see warehouse/lake.py): it answers at once while a run writes and
never sees half a night. `at` reads another snapshot (time travel). On a single DuckDB file a
reader waits for the writer, as DuckDB allows nothing else.
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

from warehouse import lake, schema
from warehouse.target import FILE, LAKE, POSTGRES, REMOTE, Target, TargetError, parse  # noqa: F401

DEFAULT_WAIT_S = 60.0
_POLL_S = 0.2
LATEST = "latest"  # reader(at=LATEST): the newest commit, published or not (plans, diagnostics)


class WarehouseBusy(RuntimeError):
    """Another writer holds the warehouse and did not let go within the wait."""


class WarehouseMissing(FileNotFoundError):
    """A read was asked of a warehouse that does not exist yet (or has published nothing)."""


class AsOfError(ValueError):
    """`--as-of` names a run or a time the warehouse cannot go back to."""


def is_file_target(target: str | Path) -> bool:
    """A local DuckDB file, as opposed to a DuckLake, `:memory:` or a remote DuckDB target."""
    return parse(target).kind == FILE


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # DuckDB plans an ASOF join as a nested loop when it expects few rows on the left, and it
    # expects none from a table created earlier in the same transaction (a build's): measured on
    # the 500-ticker bench, valuation_daily took 163 s instead of 7 s. The hash-based ASOF plan
    # is right for every size here.
    con.execute("set asof_loop_join_threshold = 0")
    return con


class _HeldLock:
    def __init__(self) -> None:
        self.depth = 1
        # A DuckLake opened under this lock, kept for the lock's life: each task of a run opens
        # a cursor on it instead of a new DuckDB (which costs 0.13 s of extension signature
        # checks each time, measured here). Closed when the lock is let go.
        self.lake: duckdb.DuckDBPyConnection | None = None


_held: dict[str, _HeldLock] = {}
_held_guard = threading.Lock()


def read_holder(db_path: Path) -> dict | None:
    """Who holds a local writer lock, as recorded in the lock file (None when nobody wrote one)."""
    try:
        text = lock_path(Path(db_path)).read_text()
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
    """Who is writing the warehouse right now. None when nobody holds the writer lock (the record
    a killed run leaves behind names a holder whose lock went with it) or the target has no lock."""
    t = parse(target)
    if t.kind == LAKE and t.catalog == POSTGRES:
        from warehouse import pglock

        try:
            who = pglock.holder(t.location)
        except Exception:  # noqa: BLE001 - unreachable catalog: nobody known to be writing
            return None
        return describe_holder(who) if who else None
    if t.lock_file is None:
        return None
    try:
        fd = os.open(t.lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return describe_holder(read_holder(t.path))
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(db_path: Path, *, holder: str, wait_s: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold the writer lock of a single DuckDB file given by its path."""
    with run_lock(str(db_path), holder=holder, wait_s=wait_s):
        yield


@contextlib.contextmanager
def _flock(path: Path, *, holder: str, wait_s: float, name: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise _busy(name, read_holder(path), wait_s) from None
            time.sleep(_POLL_S)
    record = {
        "holder": holder,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    try:
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _busy(name: str, holder: dict | None, wait_s: float) -> WarehouseBusy:
    return WarehouseBusy(
        f"warehouse {name} is being written by {describe_holder(holder)}; gave up after waiting {wait_s:g} s. "
        f"Try again when that run ends, or wait longer (--wait / BELLWETHER_LOCK_WAIT_S)."
    )


@contextlib.contextmanager
def run_lock(target: str | Path, *, holder: str, wait_s: float = DEFAULT_WAIT_S) -> Iterator[None]:
    """Hold the writer lock for the block (re-entrant within the process; a no-op for remote
    DuckDB targets such as MotherDuck, where Prefect's writer slot keeps runs apart)."""
    t = parse(target)
    if t.kind == REMOTE:
        yield
        return
    key = str(t)
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield
        finally:
            with _held_guard:
                held.depth -= 1
        return
    if t.kind == LAKE and t.catalog == POSTGRES:
        from warehouse import pglock

        lock = pglock.writer_lock(t.location, holder=holder, wait_s=wait_s,
                                  busy=lambda who: _busy(t.describe(), who, wait_s))
    else:
        lock = _flock(t.path, holder=holder, wait_s=wait_s, name=str(t.path))
    with lock:
        entry = _HeldLock()
        with _held_guard:
            _held[key] = entry
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
            if entry.lake is not None:
                entry.lake.close()


def _connect_file(path: Path, *, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(wait_s, 0.0)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                verb = "read" if read_only else "write"
                raise WarehouseBusy(
                    f"cannot {verb} warehouse {path}: it is being written by {describe_holder(read_holder(path))} "
                    f"(DuckDB: {str(exc).splitlines()[0]}); gave up after {wait_s:g} s. A single-file warehouse "
                    "refuses readers while it is written: a DuckLake warehouse (the default) does not."
                ) from None
            time.sleep(_POLL_S)


@contextlib.contextmanager
def writer(target: str | Path, *, holder: str = "bellwether", wait_s: float = DEFAULT_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection with the schema brought up to date, under the writer lock."""
    t = parse(target)
    with run_lock(t, holder=holder, wait_s=wait_s):
        if t.kind == LAKE:
            con = configure(_lake_cursor(t))  # its schema was brought up to date when opened
        else:
            con = _connect_file(t.path, read_only=False, wait_s=wait_s) if t.kind == FILE else duckdb.connect(t.location)
            try:
                schema.ensure(configure(con))
            except Exception:
                con.close()
                raise
        try:
            yield con
        finally:
            con.close()


def _lake_cursor(t: Target) -> duckdb.DuckDBPyConnection:
    """A connection to the lake for a writer: a cursor on the lake this process opened under
    its writer lock (opened, and its schema brought up to date, on first use)."""
    with _held_guard:
        entry = _held[str(t)]
    if entry.lake is None:
        _refuse_beside_old_file(t)
        try:
            base = lake.open_lake(t, read_only=False, create=t.catalog != POSTGRES)
        except lake.LakeMissing as exc:
            raise WarehouseMissing(str(exc)) from None
        try:
            schema.ensure(configure(base))
            lake.tune(base)
        except Exception:
            base.close()
            raise
        entry.lake = base
    con = entry.lake.cursor()
    con.execute(f"use {lake.CATALOG}")
    return con


def preflight(target: str | Path) -> None:
    """What a run checks before it starts (before Prefect does): a target it can use, and no
    earlier single-file warehouse a new lake would silently leave behind."""
    t = parse(target)
    if t.kind == LAKE and t.catalog != POSTGRES:
        _refuse_beside_old_file(t)


def _refuse_beside_old_file(t: Target) -> None:
    """A new SQLite lake beside a single-file warehouse of the same name is almost certainly an
    upgrade: creating an empty lake would leave the user's history behind without a word."""
    if t.catalog != POSTGRES and not lake.exists(t):
        old = t.path.with_suffix(".duckdb")
        if old.exists():
            raise WarehouseMissing(
                f"{old} is a warehouse of an earlier Bellwether (one DuckDB file) and the DuckLake {t.path} does not exist "
                f"yet: move your history into it with `bellwether migrate --from {old}`, or keep using the single file "
                f"with --warehouse {old} (BELLWETHER_WAREHOUSE)"
            )


def create_lake(target: str | Path, *, data_path: str | None, run_id: str, now: dt.datetime, wait_s: float = DEFAULT_WAIT_S):
    """Create the warehouse if it does not exist: schemas, tables, and (on a DuckLake) a first
    published snapshot of the empty tables, recorded as an `init` run. Returns (what was
    created: the data path of a new lake, True for a new file, False when it existed; the
    published snapshot)."""
    from warehouse import audit

    t = parse(target)
    with run_lock(t, holder="bellwether init", wait_s=wait_s):
        if t.kind == LAKE:
            existed = lake.exists(t)
            con = lake.open_lake(t, read_only=False, create=True, data_path=data_path)
        elif t.kind == FILE:
            existed = t.path.exists()
            con = _connect_file(t.path, read_only=False, wait_s=wait_s)
        else:
            existed, con = True, duckdb.connect(t.location)
        try:
            configure(con)
            schema.ensure(con)
            if t.kind == LAKE and existed and data_path and lake.data_path_of(con).rstrip("/") != data_path.rstrip("/"):
                raise lake.LakeError(f"{t.describe()} exists with its data at {lake.data_path_of(con)}, not {data_path}")
            if existed:
                return False, None
            audit.start_run(con, run_id=run_id, flow="init", parameters={"data_path": data_path}, started_at=now)
            snapshot = audit.finish_run(con, run_id=run_id, status=audit.SUCCEEDED, ended_at=now)
            return (lake.data_path_of(con) if t.kind == LAKE else True), snapshot
        finally:
            con.close()


def open_reader(target: str | Path, *, wait_s: float = 10.0, at: int | str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection (close it when done; `reader` does). On a DuckLake: at the
    published snapshot, or `at`: a snapshot id, `LATEST`, a run id or a timestamp (time travel).

    For notebooks: `from warehouse.connect import open_reader; con = open_reader("ducklake:sqlite:warehouse/bellwether.sqlite")`."""
    t = parse(target)
    if t.kind == LAKE:
        try:
            con = lake.open_lake(t, read_only=True)
        except lake.LakeMissing as exc:
            raise WarehouseMissing(str(exc)) from None
        try:
            if at == LATEST:
                return configure(con)
            snapshot = at if isinstance(at, int) else resolve_as_of(con, at) if at else lake.latest_published(con)
            if snapshot is None:
                raise WarehouseMissing(
                    f"no run has published to {t.describe()} yet"
                    + (f" ({who} is writing it now; its results appear when it finishes)" if (who := current_writer(t)) else "")
                )
            return configure(lake.reattach(con, t, snapshot=snapshot))
        except BaseException:
            con.close()
            raise
    if at not in (None, LATEST):
        raise AsOfError(
            f"time travel needs a DuckLake warehouse; {t.describe()} is a single DuckDB file, which keeps no history "
            "(`bellwether migrate --from` moves it into a DuckLake)"
        )
    if t.kind == FILE:
        if not t.path.exists():
            raise WarehouseMissing(
                f"no warehouse at {t.path}: run `bellwether run` (or `make run`) first, "
                f"or point --warehouse / BELLWETHER_WAREHOUSE at an existing one"
            )
        return configure(_connect_file(t.path, read_only=True, wait_s=wait_s))
    return configure(duckdb.connect(t.location, read_only=True))


@contextlib.contextmanager
def reader(target: str | Path, *, wait_s: float = 10.0, at: int | str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection (see `open_reader`), closed after the block."""
    con = open_reader(target, wait_s=wait_s, at=at)
    try:
        yield con
    finally:
        con.close()


def resolve_as_of(con: duckdb.DuckDBPyConnection, text: str) -> int:
    """The snapshot `text` names: a snapshot number, a run id (the snapshot that run published)
    or a time (ISO 8601; without an offset, UTC): the state a reader saw then, the last snapshot
    published on or before it."""
    text = str(text).strip()
    if text.isdigit():  # a snapshot number (`bellwether status` and audit.runs.snapshot_id show them)
        found = con.execute(f"select snapshot_id from {lake.CATALOG}.snapshots() where snapshot_id = ?", [int(text)]).fetchone()
        if found is None:
            published = [p["snapshot_id"] for p in lake.published_snapshots(con)]
            raise AsOfError(f"--as-of {text}: no snapshot {text} in this warehouse (published ones: "
                            f"{', '.join(map(str, published[-10:])) or 'none'}; maintenance may have expired older ones)")
        return int(text)
    row = con.execute("select snapshot_id, status from audit.runs where run_id = ?", [text]).fetchone()
    if row is not None:
        if row[0] is None:
            raise AsOfError(f"run {text} ({row[1]}) published no snapshot: it did not finish, or it ran before time travel existed")
        return int(row[0])
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(
            f"--as-of {text!r} is neither a run id in audit.runs nor a time (ISO 8601, e.g. 2025-01-28T08:00-05:00)"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    snapshot = lake.snapshot_at(con, at)
    if snapshot is None:
        first = lake.published_snapshots(con)
        when = f"; the first was published at {first[0]['at']:%Y-%m-%d %H:%M:%S %Z}" if first else ""
        raise AsOfError(f"nothing was published on or before {at.isoformat()}{when}")
    return int(snapshot)
