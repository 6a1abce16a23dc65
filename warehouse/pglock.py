"""The writer lock of a lake whose catalog is in PostgreSQL: an advisory lock in that database.

Writers on several machines share one PostgreSQL catalog, so a lock file on one machine cannot
keep them apart. A session-level advisory lock can: PostgreSQL grants it to one session at a
time and releases it when the session ends, including when the holding process is killed (the
server sees the connection drop). Who holds it is written to a one-row table beside DuckLake's
own (`bellwether_writer`), read back only while the lock is really held, so a record left by a
killed run names nobody.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator

LOCK_KEY = 0x62656C6C  # "bell": one writer per catalog database
HOLDER_TABLE = "bellwether_writer"
_POLL_S = 0.2


def _connect(conninfo: str):
    import psycopg

    # The same conninfo DuckDB's postgres extension takes (libpq: PGPASSWORD, ~/.pgpass apply).
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="bellwether")


def has_table(conninfo: str, name: str) -> bool:
    with contextlib.closing(_connect(conninfo)) as db:
        return db.execute("select to_regclass(%s) is not null", [name]).fetchone()[0]


def holder(conninfo: str) -> dict | None:
    """Who holds the writer lock now (None: nobody)."""
    with contextlib.closing(_connect(conninfo)) as db:
        held = db.execute(
            "select pid from pg_locks where locktype = 'advisory' and granted and objid = %s and classid = 0",
            [LOCK_KEY & 0xFFFFFFFF],
        ).fetchone()
        if held is None:
            return None
        if db.execute("select to_regclass(%s) is null", [HOLDER_TABLE]).fetchone()[0]:
            return {"holder": "a writer", "pid": "?", "host": "?"}
        row = db.execute(f"select record from {HOLDER_TABLE} where backend_pid = %s", [held[0]]).fetchone()
        return json.loads(row[0]) if row else {"holder": "a writer", "pid": "?", "host": "?"}


@contextlib.contextmanager
def writer_lock(conninfo: str, *, holder: str, wait_s: float, busy) -> Iterator[dict]:
    """Hold the catalog database's writer lock for the block; wait at most `wait_s` seconds,
    then raise `busy(record of the holder)`."""
    db = _connect(conninfo)
    try:
        deadline = time.monotonic() + max(wait_s, 0.0)
        while not db.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise busy(_current(conninfo))
            time.sleep(_POLL_S)
        record = {
            "holder": holder, "pid": os.getpid(), "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        db.execute(f"create table if not exists {HOLDER_TABLE} (backend_pid integer primary key, record text not null)")
        db.execute(f"delete from {HOLDER_TABLE}")
        db.execute(f"insert into {HOLDER_TABLE} values (pg_backend_pid(), %s)", [json.dumps(record)])
        try:
            yield record
        finally:
            with contextlib.suppress(Exception):
                db.execute(f"delete from {HOLDER_TABLE} where backend_pid = pg_backend_pid()")
                db.execute("select pg_advisory_unlock(%s)", [LOCK_KEY])
    finally:
        db.close()


def _current(conninfo: str) -> dict | None:
    try:
        return holder(conninfo)
    except Exception:  # noqa: BLE001 - the message is best effort; the refusal stands
        return None
