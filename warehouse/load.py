"""Loading batches into `raw`: bulk, keyed, idempotent and atomic.

One batch is one transaction: the rows are upserted on the table's key, the refused rows go to
`audit.quarantine` with their original values, and a line goes to `audit.load_batches`. If
anything fails the transaction rolls back and the warehouse is as it was. A row whose values did
not change keeps its lineage (`run_id`, `loaded_at`), so loading the same day twice leaves the
tables identical, and `loaded_at` tells when a value last changed.

Keys are kept unique here, not by the database: DuckLake has no primary keys. A batch that
carries a key twice is refused whole (DuplicateKeys, naming the keys) before anything is
written, new rows are inserted only for keys not present, and the written date range is checked
again before the commit. Writers never overlap (warehouse/connect.py's writer lock), so nobody
else inserts the same keys meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from sources.contract import Batch, Dataset
from warehouse import checks

QUARANTINE_CHECK = "raw_contract"
_KEY_SAMPLE = 5
# A batch is handed to DuckDB as Arrow record batches of this many rows: one record batch (what
# pandas converts to) is scanned, cast and written by one thread; several let both cores work.
# Measured on a night of option quotes (97,720 rows) into the lake: 56 -> 33 ms, with raw's
# 65,536-row row groups (warehouse/lake.py RAW_ROW_GROUP_ROWS).
ARROW_CHUNK_ROWS = 16_384


class DuplicateKeys(ValueError):
    """A batch (or, after writing, the table) holds a key more than once: nothing is loaded."""


@dataclasses.dataclass(frozen=True)
class LoadResult:
    table: str
    delivered: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    removed: int = 0
    failed: tuple[str, ...] = ()  # tickers the source could not fetch (see audit.fetch_outcomes)
    # The earliest date (the dataset's date column) of a row this load inserted or changed:
    # where an incremental build has to start. None when nothing was written.
    first_changed: dt.date | None = None

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    # After a failed statement the transaction is aborted and DuckDB refuses even this; the
    # caller's rollback is what matters, and a stale registration is replaced on next use.
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_CHUNK_ROWS), schema=table.schema)


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, str],
    key: tuple[str, ...],
    frame: pd.DataFrame,
    *,
    source: str,
    run_id: str,
    loaded_at: dt.datetime,
    date_column: str | None = None,
) -> tuple[int, int, dt.date | None]:
    """Upsert `frame` into `table` (inside the caller's transaction). Returns (inserted,
    updated, the earliest `date_column` value among the rows inserted or updated).

    A batch whose dates are all new to the table (a backfill chunk, a night's snapshots) is an
    append: one INSERT after the batch's keys are found unique. Otherwise two statements: an
    UPDATE of the rows whose key exists and whose values changed, then an INSERT of the keys not
    there yet. Measured at S&P 500 scale (bench/), this is several times
    faster than one INSERT .. ON CONFLICT DO UPDATE, and with `date_column` (a key column) the
    lookups only read the batch's date range (DuckDB and DuckLake skip the other row groups and
    files by their min/max). A key twice in the batch is refused before anything is written,
    and the written range is checked for a repeated key before the caller commits."""
    if frame.empty:
        return 0, 0, None
    view, typed = "bellwether_incoming", "bellwether_typed"
    lineage = {"source": source, "run_id": run_id, "loaded_at": loaded_at}
    dated = date_column is not None and date_column in key
    lo = hi = None
    if dated:
        lo, hi = (pd.Timestamp(frame[date_column].min()).date(), pd.Timestamp(frame[date_column].max()).date())
    con.register(view, _arrow(frame))
    try:
        if dated and not _has_rows_between(con, table, date_column, lo, hi):
            # An append (a backfill chunk or a night of new dates): no key of the batch can be
            # in the table, so one INSERT does, once the batch's own keys are known unique.
            key_casts = ", ".join(f"cast({c} as {columns[c]}) as {c}" for c in key)
            _refuse_duplicates(con, f"(select {key_casts} from {view})", key, f"{table}: the batch")
            appended = con.execute(f"insert into {table} by name {_typed_select(columns, view)}", lineage).fetchone()[0]
            return int(appended), 0, lo
        con.execute(f"create or replace temp table {typed} as {_typed_select(columns, view)}", lineage)
    finally:
        _unregister(con, view)
    try:
        _refuse_duplicates(con, typed, key, f"{table}: the batch")
        on = " and ".join(f"t.{k} = i.{k}" for k in key)
        params: dict = {}
        if dated:
            on += f" and t.{date_column} between $lo and $hi"
            params = {"lo": lo, "hi": hi}
        value_cols = [c for c in columns if c not in key] + ["source"]
        changed = " or ".join(f"t.{c} is distinct from i.{c}" for c in value_cols)
        sets = ", ".join(f"{c} = i.{c}" for c in value_cols + ["run_id", "loaded_at"])
        updated = con.execute(f"update {table} as t set {sets} from {typed} as i where {on} and ({changed})", params).fetchone()[0]
        inserted = con.execute(
            f"insert into {table} by name select * from {typed} as i where not exists (select 1 from {table} as t where {on})",
            params,
        ).fetchone()[0]
        if inserted:
            window = f"{date_column} between $lo and $hi" if params else "true"
            _refuse_duplicates(con, f"(select * from {table} where {window})", key, table, params)
        first_changed = None
        if lo is not None and (inserted or updated):
            if inserted == len(frame):
                first_changed = lo
            else:  # the rows written now carry this load's lineage
                first_changed = con.execute(
                    f"select min(t.{date_column}) from {table} as t inner join {typed} as i on {on} "
                    "where t.run_id = $run_id and t.loaded_at = $loaded_at",
                    params | {"run_id": run_id, "loaded_at": loaded_at},
                ).fetchone()[0]
    finally:
        # After a failed statement the transaction is aborted (the rollback drops it anyway).
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists {typed}")
    return int(inserted), int(updated), first_changed


def _has_rows_between(con: duckdb.DuckDBPyConnection, table: str, date_column: str, lo, hi) -> bool:
    """Whether `table` holds any row dated lo..hi (DuckDB and DuckLake skip the row groups and
    files outside the range by their min/max, so this reads next to nothing for new dates)."""
    return con.execute(f"select exists (select 1 from {table} where {date_column} between $lo and $hi)",
                       {"lo": lo, "hi": hi}).fetchone()[0]


def _typed_select(columns: dict[str, str], view: str) -> str:
    """The registered batch `view` cast to the table's types, with the load's lineage
    ($source, $run_id, $loaded_at)."""
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in columns.items())
    return (f"select {casts}, cast($source as varchar) as source, cast($run_id as varchar) as run_id, "
            f"cast($loaded_at as timestamptz) as loaded_at from {view}")


def _refuse_duplicates(con: duckdb.DuckDBPyConnection, relation: str, key: tuple[str, ...], what: str, params: dict | None = None) -> None:
    cols = ", ".join(key)
    rows = con.execute(
        f"select {cols}, count(*) as n from {relation} group by {cols} having count(*) > 1 order by {cols} limit {_KEY_SAMPLE + 1}",
        params or {},
    ).fetchall()
    if rows:
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in zip(key, r[:-1], strict=True)) + f" ({r[-1]} times)" for r in rows[:_KEY_SAMPLE])
        raise DuplicateKeys(
            f"{what} holds a key more than once ({shown}{' ...' if len(rows) > _KEY_SAMPLE else ''}); nothing of the batch was loaded"
        )


def quarantine(
    con: duckdb.DuckDBPyConnection,
    rejects: pd.DataFrame,
    *,
    run_id: str,
    table: str,
    check_name: str = QUARANTINE_CHECK,
    at: dt.datetime,
) -> int:
    """Record refused rows (inside the caller's transaction)."""
    if rejects.empty:
        return 0
    frame = pd.DataFrame(
        {
            "reason": rejects["reason"].astype(str).values,
            "source_ref": rejects["source_ref"].astype(object).values,
            "line": pd.array(rejects["line"], dtype="Int64"),
            "ticker": rejects["ticker"].astype(object).values,
            "row_key": rejects["key"].astype(object).values,
            "row_json": rejects["row_json"].astype(object).values,
            # Rows a data check refused name that check; the contract's own refusals the default.
            "check_name": rejects["check_name"].where(rejects["check_name"].fillna("") != "", check_name).astype(object).values
            if "check_name" in rejects
            else check_name,
            "position": range(len(rejects)),
        }
    )
    con.register("bellwether_rejects", _arrow(frame))
    try:
        # Ids continue from the largest: one writer at a time, so no two loads draw the same.
        con.execute(
            """
            insert into audit.quarantine
                (quarantine_id, run_id, table_name, check_name, reason, source_ref, line, ticker, row_key, row_json, quarantined_at)
            select (select coalesce(max(quarantine_id), 0) from audit.quarantine) + row_number() over (order by position),
                   $run_id, $table, check_name, reason, source_ref, line, ticker,
                   cast(row_key as json), cast(row_json as json), $at
            from bellwether_rejects
            """,
            {"run_id": run_id, "table": table, "at": at},
        )
    finally:
        _unregister(con, "bellwether_rejects")
    return len(frame)


def record_outcomes(con: duckdb.DuckDBPyConnection, outcomes: pd.DataFrame, *, run_id: str, source: str, at: dt.datetime) -> int:
    """Record what a network source tried per ticker (inside the caller's transaction)."""
    if outcomes.empty:
        return 0
    con.register("bellwether_outcomes", _arrow(outcomes.astype({"reason": object})))
    try:
        con.execute(
            """
            insert into audit.fetch_outcomes
                (run_id, dataset, ticker, status, rows, attempts, reason, source, recorded_at, retryable)
            select $run_id, dataset, coalesce(ticker, '*'), status, rows, attempts, reason, $source, $at, retryable
            from bellwether_outcomes
            """,
            {"run_id": run_id, "source": source, "at": at},
        )
    finally:
        _unregister(con, "bellwether_outcomes")
    return len(outcomes)


def _republished(con: duckdb.DuckDBPyConnection, ds: Dataset, frame: pd.DataFrame) -> pd.Series:
    """Rows that repeat the latest earlier publication of the same figure, value for value.

    A provider that serves figures "as of now" without a report date (Yahoo, for a quarter its
    earnings calendar lacks) dates them the night it first sees them; the next nights bring the
    same figures again under a later date. Those repeats are not new publications: they are
    counted as unchanged. A later row with different values is a restatement and is kept.
    """
    if not ds.published_as or frame.empty:
        return pd.Series(False, index=frame.index)
    ident, version = list(ds.published_as), ds.date_column
    values = [c for c in ds.columns if c not in ds.key]
    incoming = frame.assign(bellwether_row=range(len(frame)))
    con.register("bellwether_published", _arrow(incoming))
    try:
        on = " and ".join(f"t.{c} = i.{c}" for c in ident)
        same = " and ".join(f"l.{c} is not distinct from i.{c}" for c in values)
        rows = con.execute(
            f"""
            with latest as (
                select i.bellwether_row, t.*
                from bellwether_published as i
                inner join raw.{ds.name} as t on {on} and t.{version} < cast(i.{version} as date)
                qualify row_number() over (partition by i.bellwether_row order by t.{version} desc) = 1
            )
            select l.bellwether_row
            from latest as l
            inner join bellwether_published as i using (bellwether_row)
            where {same}
            """
        ).fetchall()
    finally:
        _unregister(con, "bellwether_published")
    hit = {r[0] for r in rows}
    return pd.Series([i in hit for i in range(len(frame))], index=frame.index)


def load_batch(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    *,
    source: str,
    run_id: str,
    loaded_at: dt.datetime,
    window: tuple[dt.date, dt.date] | None = None,
    check_results: Sequence[checks.CheckResult] = (),
    before_commit: Callable[[duckdb.DuckDBPyConnection, "LoadResult"], None] | None = None,
) -> LoadResult:
    """Upsert one batch into raw.<dataset>, quarantine its rejects, log it and its checks'
    results: all or nothing. `before_commit(con, result)` runs inside the same transaction (a
    backfill records its chunk there, so a chunk is recorded exactly when its rows are in)."""
    ds: Dataset = batch.dataset
    table = f"raw.{ds.name}"
    con.begin()
    try:
        checks.record_results(con, check_results, run_id=run_id, at=loaded_at)
        fresh = batch.frame[~_republished(con, ds, batch.frame)]
        inserted, updated, first_changed = _upsert(
            con, table, dict(ds.columns), ds.key, fresh, source=source, run_id=run_id, loaded_at=loaded_at,
            date_column=ds.date_column,
        )
        rejected = quarantine(con, batch.rejects, run_id=run_id, table=table, at=loaded_at)
        record_outcomes(con, batch.outcomes, run_id=run_id, source=source, at=loaded_at)
        result = LoadResult(
            table=table,
            delivered=len(batch.frame) + len(batch.rejects),
            inserted=inserted,
            updated=updated,
            unchanged=len(batch.frame) - inserted - updated,
            rejected=rejected,
            failed=tuple(batch.failed["ticker"]),
            first_changed=first_changed,
        )
        _log_batch(con, result, source=source, run_id=run_id, loaded_at=loaded_at, window=window, notes=batch.notes)
        if before_commit is not None:
            before_commit(con, result)
        con.commit()
    except Exception:
        con.rollback()
        raise
    return result


def _memberships(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    """What the marts read of raw.universe: ticker -> (cohort, role)."""
    return {t: (c, r) for t, c, r in con.execute("select ticker, cohort, role from raw.universe").fetchall()}


def load_universe(
    con: duckdb.DuckDBPyConnection, universe: pd.DataFrame, *, source: str, run_id: str, loaded_at: dt.datetime
) -> LoadResult:
    """Make raw.universe equal to the universe file: upsert its rows, remove tickers it no longer
    lists. A change to what the marts read of it (tickers, cohorts, roles) is recorded in
    audit.universe_changes: the marts owe a rebuild of every day."""
    columns = {"ticker": "VARCHAR", "name": "VARCHAR", "sector": "VARCHAR", "cohort": "VARCHAR", "role": "VARCHAR",
               "sub_industry": "VARCHAR"}
    frame = universe.reindex(columns=list(columns)).copy()  # a frame without sub_industry loads it NULL
    con.begin()
    try:
        before = _memberships(con)
        inserted, updated, _ = _upsert(
            con, "raw.universe", columns, ("ticker",), frame, source=source, run_id=run_id, loaded_at=loaded_at
        )
        con.register("bellwether_universe_keys", _arrow(frame[["ticker"]]))
        removed = con.execute(
            "delete from raw.universe where ticker not in (select ticker from bellwether_universe_keys)"
        ).fetchone()[0]
        _unregister(con, "bellwether_universe_keys")
        result = LoadResult(
            table="raw.universe",
            delivered=len(frame),
            inserted=inserted,
            updated=updated,
            unchanged=len(frame) - inserted - updated,
            rejected=0,
            removed=int(removed),
        )
        _log_batch(con, result, source=source, run_id=run_id, loaded_at=loaded_at, window=None, notes=[])
        after = _memberships(con)
        moved = sum(1 for t, membership in after.items() if t in before and before[t] != membership)
        if inserted or removed or moved:
            # Cohorts and roles apply back through history: the marts owe a rebuild of every day.
            con.execute(
                "insert into audit.universe_changes values (?, ?, ?, ?, ?, ?, null)",
                [run_id, source, inserted, moved, int(removed), loaded_at],
            )
        con.commit()
    except Exception:
        con.rollback()
        raise
    return result


def _log_batch(con, result: LoadResult, *, source, run_id, loaded_at, window, notes) -> None:
    con.execute(
        "insert into audit.load_batches (run_id, table_name, source, window_start, window_end, rows_delivered, "
        "rows_inserted, rows_updated, rows_unchanged, rows_rejected, loaded_at, notes, first_changed) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            result.table,
            source,
            window[0] if window else None,
            window[1] if window else None,
            result.delivered,
            result.inserted,
            result.updated,
            result.unchanged,
            result.rejected,
            loaded_at,
            "; ".join(notes) if notes else None,
            result.first_changed,
        ],
    )



def land_check_publish(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    *,
    checks_file: checks.ChecksFile | None,
    expectations: checks.Expectations | None,
    run_date: dt.date,
    source: str,
    run_id: str,
    loaded_at: dt.datetime,
    window: tuple[dt.date, dt.date] | None = None,
    before_commit: Callable[[duckdb.DuckDBPyConnection, LoadResult], None] | None = None,
) -> tuple[LoadResult, checks.LandOutcome]:
    """Land -> check -> publish: check the fetched batch, then load the rows that passed and
    quarantine the ones that failed (or the whole batch, when a check holds it), in one
    transaction with the checks' results."""
    ref = f"{batch.dataset.name} {window[0]}..{window[1]}" if window else batch.dataset.name
    outcome = checks.check_batch(
        con, batch.frame, checks_file, run_date=run_date, lineage=batch.lineage_frame(), batch_ref=ref,
        expectations=expectations,
    )
    if len(outcome.refused):
        keep = ~batch.frame.reset_index(drop=True).index.isin(outcome.refused_rows)
        lineage = batch.lineage_frame()[keep].reset_index(drop=True)
        rejects = pd.concat([batch.rejects.assign(check_name=QUARANTINE_CHECK), outcome.refused], ignore_index=True)
        batch = dataclasses.replace(batch, frame=outcome.passed, rejects=rejects, lineage=lineage)
    result = load_batch(
        con, batch, source=source, run_id=run_id, loaded_at=loaded_at, window=window, check_results=outcome.results,
        before_commit=before_commit,
    )
    return result, outcome

