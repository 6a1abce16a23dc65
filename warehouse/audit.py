"""Run history: `audit.runs` holds every run with its parameters, outcome and rows per table.

A run's end is also its publication on a DuckLake warehouse: `finish_run` commits the run's
outcome as the snapshot readers see from then on, and records that snapshot's id.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping

import duckdb

RUNNING, SUCCEEDED, PARTIAL, FAILED = "running", "succeeded", "partial", "failed"


def new_run_id(flow: str, now: dt.datetime) -> str:
    return f"{flow}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _json(value) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _in_transaction(con: duckdb.DuckDBPyConnection, work) -> None:
    con.begin()
    try:
        work()
        con.commit()
    except Exception:
        con.rollback()
        raise


def start_run(con: duckdb.DuckDBPyConnection, *, run_id: str, flow: str, parameters: Mapping, started_at: dt.datetime) -> None:
    """Record a run as running (a run id seen before, e.g. a Prefect retry, starts over)."""

    def work() -> None:
        con.execute("delete from audit.runs where run_id = ?", [run_id])
        con.execute(
            "insert into audit.runs (run_id, flow, parameters, started_at, status) values (?, ?, ?, ?, ?)",
            [run_id, flow, _json(dict(parameters)), started_at, RUNNING],
        )

    _in_transaction(con, work)


def finish_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    status: str,
    ended_at: dt.datetime,
    rows_by_table: Mapping[str, int] | None = None,
    message: str | None = None,
) -> int | None:
    """Record the run's outcome; on a DuckLake, in the commit that publishes it. Returns the
    published snapshot's id (None on a single DuckDB file)."""
    if status not in (SUCCEEDED, PARTIAL, FAILED):
        raise ValueError(f"unknown run status {status!r}")
    from warehouse import lake

    publishing = lake.is_lake(con)
    snapshot = None

    def work() -> None:
        nonlocal snapshot
        snapshot = lake.tag_publish(con, run_id=run_id, status=status) if publishing else None
        updated = con.execute(
            "update audit.runs set status = ?, ended_at = ?, rows_by_table = ?, message = ?, snapshot_id = ? where run_id = ?",
            [status, ended_at, _json(dict(rows_by_table or {})), message, snapshot, run_id],
        ).fetchone()[0]
        if not updated:
            raise KeyError(f"run {run_id} was never started in audit.runs")

    _in_transaction(con, work)
    if publishing and lake.last_committed(con) != snapshot:
        # Someone committed outside the writer lock while this run published, so its snapshot
        # got another id: record the one it got, in a commit that publishes the same state.
        actual = lake.last_committed(con)

        def fix() -> None:
            lake.tag_publish(con, run_id=run_id, status=status)
            con.execute("update audit.runs set snapshot_id = ? where run_id = ?", [actual, run_id])

        _in_transaction(con, fix)
        snapshot = actual
    return snapshot


def last_fetch_outcomes(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> list[dict]:
    """The latest outcome of every (dataset, ticker) the nightly runs for `run_date` fetched,
    retries of the night included: what a retry of that night owes."""
    cur = con.execute(
        """
        select o.dataset, o.ticker, o.status, o.retryable, o.attempts, o.reason, o.run_id
        from audit.fetch_outcomes as o
        inner join audit.runs as r on o.run_id = r.run_id
        where r.flow = 'nightly' and json_extract_string(r.parameters, '$.run_date') = ?
        qualify row_number() over (partition by o.dataset, o.ticker order by o.recorded_at desc, r.started_at desc) = 1
        order by o.dataset, o.ticker
        """,
        [run_date.isoformat()],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def recent_runs(con: duckdb.DuckDBPyConnection, limit: int = 10) -> list[dict]:
    cur = con.execute(
        "select run_id, flow, status, started_at, ended_at, message, rows_by_table, parameters, snapshot_id "
        "from audit.runs order by started_at desc limit ?",
        [limit],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def freshness(con: duckdb.DuckDBPyConnection, expected: dt.date, tables: Mapping[str, str]) -> list[dict]:
    """Per table (name -> its date column): rows, the latest date loaded, and how many NYSE
    sessions it is behind `expected` (the latest session that should be loaded)."""
    from sources import calendar

    out = []
    for table, column in tables.items():
        rows, latest = con.execute(f"select count(*), max({column}) from {table}").fetchone()
        latest = latest.date() if isinstance(latest, dt.datetime) else latest
        behind = None
        if latest is not None and latest <= expected:
            behind = len(calendar.sessions(latest, expected)) - (1 if calendar.is_session(latest) else 0)
        out.append({"table": table, "rows": int(rows), "latest": latest, "expected": expected, "sessions_behind": behind})
    return out


def quarantine_waiting(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Quarantined rows per table and check, with the latest run that refused some."""
    cur = con.execute(
        """
        select table_name, check_name, count(*) as rows, max(quarantined_at) as last_at,
               arg_max(run_id, quarantined_at) as last_run
        from audit.quarantine
        group by all
        order by table_name, check_name
        """
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def record_chunk(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    dataset: str,
    source_ref: str,
    start: dt.date,
    end: dt.date,
    tickers: list[str] | tuple[str, ...] | None,
    delivered: int,
    inserted: int,
    updated: int,
    unchanged: int,
    rejected: int,
    loaded_at: dt.datetime,
) -> None:
    """Record one backfill chunk as loaded (call inside the load's transaction)."""
    con.execute(
        "insert into audit.backfill_chunks values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [run_id, dataset, source_ref, start, end, None if tickers is None else _json(sorted(tickers)),
         delivered, inserted, updated, unchanged, rejected, loaded_at],
    )


def unbuilt_since(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """The earliest date the marts owe a rebuild from: of a backfilled chunk, or of a row a load
    changed (any run's: a night whose build failed or was blocked, a backfill without build),
    that no build has covered yet. None when nothing is owed."""
    return con.execute(
        """
        select min(owed) from (
            select min(chunk_start) as owed from audit.backfill_chunks where built_at is null
            union all
            select min(first_changed) as owed from audit.load_batches where built_at is null
        )
        """
    ).fetchone()[0]


def universe_change_unbuilt(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run whose change to the universe the marts have not been rebuilt over yet (every day
    of them: cohorts and roles apply back through history); None when nothing is owed."""
    row = con.execute(
        "select run_id from audit.universe_changes where built_at is null order by changed_at limit 1"
    ).fetchone()
    return row[0] if row else None


def mark_built(con: duckdb.DuckDBPyConnection, *, loaded_before: dt.datetime, at: dt.datetime) -> int:
    """Mark the chunks, loads and universe changes loaded up to `loaded_before` as built into
    the marts; how many chunks."""
    con.execute(
        "update audit.universe_changes set built_at = ? where built_at is null and changed_at <= ?", [at, loaded_before]
    )
    con.execute("update audit.load_batches set built_at = ? where built_at is null and loaded_at <= ?", [at, loaded_before])
    return con.execute(
        "update audit.backfill_chunks set built_at = ? where built_at is null and loaded_at <= ?", [at, loaded_before]
    ).fetchone()[0]
