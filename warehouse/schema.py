"""Schemas, DDL and ordered migrations for the parts of the warehouse that hold delivered data.

`sql/raw/*.sql` and `sql/audit/*.sql` hold each table's current DDL. A fresh warehouse is
created from them and stamped with the latest schema version. A warehouse written by an older
Bellwether carries a lower version in `audit.schema_version`; `ensure()` applies the missing
migrations in order, each in one transaction with its version stamp, so an older file upgrades
in place without losing a row (and a failed step leaves it at the last good version).

Adding a column: change the DDL file *and* append a `Migration` below that alters existing
files the same way. `tests/unit/test_schema.py` checks that the two paths agree.
Staging and marts are derived: the model runner rebuilds them, so they need no migrations.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
SCHEMAS = ("raw", "staging", "marts", "audit")
DDL_LAYERS = ("raw", "audit")


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    description: str
    # SQL text (may hold several statements) or a function of the connection. Version 1 is the
    # baseline: it has no step of its own, because it is the DDL as first released.
    apply: str | Callable[[duckdb.DuckDBPyConnection], None] | None = None


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: raw tables, universe, audit runs/quarantine/load_batches"),
    Migration(2, "audit.check_results: every data check's outcome", (SQL_DIR / "audit" / "check_results.sql").read_text()),
    Migration(3, "audit.backfill_chunks: the chunks backfills loaded (resumable backfills)", (SQL_DIR / "audit" / "backfill_chunks.sql").read_text()),
    Migration(4, "audit.universe_changes: universe loads that owe a rebuild of every day", (SQL_DIR / "audit" / "universe_changes.sql").read_text()),
    Migration(5, "audit.runs.snapshot_id: the DuckLake snapshot a run published", "alter table audit.runs add column snapshot_id bigint"),
    Migration(6, "raw.universe.sub_industry: the GICS sub-industry of the S&P 500 universe",
              "alter table raw.universe add column sub_industry varchar"),
    Migration(
        7,
        "audit.fetch_outcomes.retryable: whether a failed fetch is worth trying again",
        # Before this column, the one failure not worth another try was the one the Yahoo
        # source named "unknown or delisted ticker": earlier rows are classified by that text.
        "alter table audit.fetch_outcomes add column retryable boolean; "
        "update audit.fetch_outcomes set retryable = (reason is null or reason not like 'unknown or delisted ticker%') "
        "where status = 'failed'",
    ),
    Migration(
        8,
        "audit.load_batches.first_changed, built_at: what each load changed and whether the marts were rebuilt over it",
        # Earlier loads are taken as built when their run ended succeeded or partial (its build
        # ran to the end); any other run's loads owe a rebuild from their window's first day.
        "alter table audit.load_batches add column first_changed date; "
        "alter table audit.load_batches add column built_at timestamptz; "
        "update audit.load_batches set built_at = loaded_at "
        "where run_id in (select run_id from audit.runs where status in ('succeeded', 'partial')); "
        "update audit.load_batches set first_changed = window_start "
        "where built_at is null and rows_inserted + rows_updated > 0",
    ),
)


class SchemaError(RuntimeError):
    pass


def ddl_files(layers: Sequence[str] = DDL_LAYERS) -> list[Path]:
    files: list[Path] = []
    for layer in layers:
        files.extend(sorted((SQL_DIR / layer).glob("*.sql")))
    return files


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max(m.version for m in migrations)


def _version_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create table if not exists audit.schema_version (
            version integer not null,
            description varchar not null,
            applied_at timestamptz not null
        )
        """
    )


def current_version(con: duckdb.DuckDBPyConnection) -> int | None:
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'audit' and table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return None
    return con.execute("select max(version) from audit.schema_version").fetchone()[0]


def _has_raw_tables(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = current_database() and table_schema = 'raw'"
        ).fetchone()[0]
    )


def _missing_tables(con: duckdb.DuckDBPyConnection, ddl: Sequence[Path]) -> bool:
    present = {
        (s, t) for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()
    }
    return not set(ddl_tables(ddl)) <= present


def _run_ddl(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> None:
    for path in files:
        con.execute(path.read_text())


def _stamp(con: duckdb.DuckDBPyConnection, m: Migration, now: dt.datetime) -> None:
    con.execute("insert into audit.schema_version values (?, ?, ?)", [m.version, m.description, now])


def ensure(
    con: duckdb.DuckDBPyConnection,
    migrations: Sequence[Migration] = MIGRATIONS,
    ddl: Sequence[Path] | None = None,
) -> int:
    """Bring the warehouse to the latest schema version and return that version."""
    ddl = list(ddl) if ddl is not None else ddl_files()
    latest = latest_version(migrations)
    now = dt.datetime.now(dt.UTC)
    present = {r[0] for r in con.execute(
        "select schema_name from information_schema.schemata where catalog_name = current_database()"
    ).fetchall()}
    if not set(SCHEMAS) <= present:
        # One transaction: on a DuckLake every commit is a snapshot, and opening a writer on an
        # up-to-date warehouse should make none.
        con.begin()
        try:
            for s in SCHEMAS:
                con.execute(f"create schema if not exists {s}")
            con.commit()
        except Exception:
            con.rollback()
            raise
    version = current_version(con)
    if version is None:
        if _has_raw_tables(con):
            raise SchemaError(
                "this warehouse has raw tables but no audit.schema_version: it was not written by "
                "Bellwether (or its version table was dropped); refusing to guess its schema"
            )
        con.begin()
        try:
            _version_table(con)
            _run_ddl(con, ddl)
            for m in sorted(migrations, key=lambda m: m.version):
                _stamp(con, m, now)
            con.commit()
        except Exception:
            con.rollback()
            raise
        return latest
    if version > latest:
        raise SchemaError(
            f"this warehouse is at schema version {version}, newer than this Bellwether knows "
            f"({latest}); upgrade Bellwether before writing to it"
        )
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version <= version:
            continue
        con.begin()
        try:
            if callable(m.apply):
                m.apply(con)
            elif m.apply:
                con.execute(m.apply)
            _stamp(con, m, now)
            con.commit()
        except Exception as exc:
            con.rollback()
            raise SchemaError(f"migration {m.version} ({m.description}) failed: {exc}") from exc
    # New tables added to the DDL with their migration are created if a migration did not.
    if _missing_tables(con, ddl):
        con.begin()
        try:
            _run_ddl(con, ddl)
            con.commit()
        except Exception:
            con.rollback()
            raise
    return latest


def table_columns(con: duckdb.DuckDBPyConnection, schema_name: str, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
            [schema_name, table],
        ).fetchall()
    ]


_CREATE_RE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+(\w+)\.(\w+)", re.IGNORECASE)


def ddl_tables(files: Sequence[Path] | None = None) -> list[tuple[str, str]]:
    """(schema, table) for every table the DDL files create."""
    out = []
    for path in files if files is not None else ddl_files():
        out.extend((m.group(1), m.group(2)) for m in _CREATE_RE.finditer(path.read_text()))
    return out
