"""Moving a warehouse into a new DuckLake (`bellwether migrate --from FILE|FOLDER|LAKE`): a
single-file warehouse of an earlier Bellwether, or a lake on one machine into the team's.

What moves: every raw table (the delivered data, option chains and valuation snapshots that
cannot be fetched again among it) and every audit table (runs, loads, quarantine, checks,
backfill chunks), row for row. Staging and the marts are derived: the migration rebuilds them
from raw, checked, and publishes the result as one run.

Files written by a newer DuckDB than the one Bellwether pins (Bellwether pinned DuckDB 2.0
before DuckLake, whose extensions exist only up to 1.5.5) cannot be opened here. Their tables
are exported to Parquet by that DuckDB version, run once in an isolated environment by `uv`
(the version is read from the file's header), and loaded from the Parquet files.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from warehouse import schema

MIGRATED_SCHEMAS = ("raw", "audit")
_VERSION_OFFSET, _VERSION_BYTES = 0x34, 32

_EXPORT = """
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect(src, read_only=True)
for schema, table in con.execute(
    "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
    "and schema_name in ('raw', 'audit') order by all"
).fetchall():
    con.execute(f"copy (select * from {schema}.{table}) to '{out}/{schema}.{table}.parquet' (format parquet)")
    print(schema, table, flush=True)
"""


class MigrationError(RuntimeError):
    """The old warehouse cannot be migrated as asked (the message says why and what to do)."""


@dataclasses.dataclass(frozen=True)
class Copied:
    table: str
    rows: int


def written_by(path: Path) -> str | None:
    """The DuckDB version that wrote a database file, from its header (`v2.0.0`), or None."""
    with open(path, "rb") as f:
        head = f.read(_VERSION_OFFSET + _VERSION_BYTES)
    if len(head) < _VERSION_OFFSET + _VERSION_BYTES or head[8:12] != b"DUCK":
        return None
    text = head[_VERSION_OFFSET:].split(b"\0", 1)[0].decode("ascii", "replace")
    return text if text.startswith("v") else None


def _uv() -> str | None:
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


def export_with(version: str, path: Path, out: Path) -> None:
    """Export the raw and audit tables of `path` to Parquet files in `out` with DuckDB `version`."""
    uv = _uv()
    if uv is None:
        raise MigrationError(
            f"{path} was written by DuckDB {version}, which this Bellwether cannot read, and `uv` (used to run that "
            f"version once) is not installed: `pip install uv`, or export it yourself with DuckDB {version}: "
            f"COPY each raw.* and audit.* table TO '<folder>/<schema>.<table>.parquet', then "
            f"`bellwether migrate --from <folder>`"
        )
    cmd = [uv, "run", "--quiet", "--no-project", "--isolated", "--with", f"duckdb=={version.lstrip('v')}",
           "python", "-c", _EXPORT, str(path), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise MigrationError(
            f"exporting {path} with DuckDB {version} (through uv) failed: {done.stderr.strip()[-800:] or done.stdout[-800:]}"
        )


def _sources(path: Path | str, workdir: Path) -> tuple[duckdb.DuckDBPyConnection, dict[str, str]]:
    """A connection and, per `schema.table`, the relation to read it from."""
    if isinstance(path, str):  # another DuckLake: read at its published snapshot
        from warehouse.connect import WarehouseMissing, open_reader

        try:
            con = open_reader(path)
        except WarehouseMissing as exc:
            raise MigrationError(f"cannot migrate from {path}: {exc}") from None
        rows = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            f"and schema_name in {MIGRATED_SCHEMAS}"
        ).fetchall()
        return con, {f"{s}.{t}": f"{s}.{t}" for s, t in rows}
    con = duckdb.connect()
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
    else:
        try:
            con.execute(f"attach '{path}' as old (read_only)")
        except duckdb.IOException as exc:
            version = written_by(path)
            if version is None or "newer version" not in str(exc):
                raise MigrationError(f"cannot open {path} as a DuckDB database: {str(exc).splitlines()[0]}") from None
            export_with(version, path, workdir)
            files = sorted(workdir.glob("*.parquet"))
        else:
            rows = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'old' "
                f"and schema_name in {MIGRATED_SCHEMAS}"
            ).fetchall()
            return con, {f"{s}.{t}": f"old.{s}.{t}" for s, t in rows}
    found = {}
    for f in files:
        name = f.name.removesuffix(".parquet")
        if name.split(".", 1)[0] in MIGRATED_SCHEMAS:
            found[name] = f"read_parquet('{f}')"
    return con, found


def copy_tables(target: duckdb.DuckDBPyConnection, path: Path | str) -> list[Copied]:
    """Copy every raw and audit table of the old warehouse (a DuckDB file of any version, a
    folder of `<schema>.<table>.parquet` files, or another DuckLake named by its target, read at
    its published snapshot: a lake on one machine moving to the team's PostgreSQL catalog) into
    `target` (an empty warehouse with the schema applied), in one transaction: all of it or
    nothing. Columns the old file lacks stay NULL (an older schema); a column the new schema
    does not know is an error."""
    if not str(path).lower().startswith("ducklake:"):
        path = Path(path)
        if not path.exists():
            raise MigrationError(f"no old warehouse at {path}")
    holding = [
        t for s, t in schema.ddl_tables() if s == "raw"
        and target.execute(f"select count(*) from raw.{t}").fetchone()[0] > 0
    ]
    if holding:
        raise MigrationError(
            f"the target warehouse already holds data (raw.{', raw.'.join(holding)}): migrate into a new, empty one"
        )
    with tempfile.TemporaryDirectory(prefix="bellwether-migrate-") as tmp:
        source, relations = _sources(path, Path(tmp))
        try:
            missing = [f"raw.{t}" for s, t in schema.ddl_tables() if s == "raw" and f"raw.{t}" not in relations]
            if missing:
                raise MigrationError(f"{path} is not a Bellwether warehouse: it has no {', '.join(missing)}")
            frames = {name: source.execute(f"select * from {rel}").to_arrow_table() for name, rel in relations.items()}
        finally:
            source.close()
    known = set(schema.ddl_tables()) | {("audit", "schema_version")}
    copied = []
    target.begin()
    try:
        for name, table in sorted(frames.items()):
            if tuple(name.split(".", 1)) not in known:
                continue  # a table of a later Bellwether: not this one's to interpret
            if name == "audit.schema_version":
                continue  # the new warehouse has its own, at the current version
            columns = {c for c, _ in schema.table_columns(target, *name.split(".", 1))}
            unknown = [c for c in table.column_names if c not in columns]
            if unknown:
                raise MigrationError(f"{name} in {path} has column(s) {', '.join(unknown)} this Bellwether does not know")
            target.register("bellwether_old", table)
            try:
                target.execute(f"insert into {name} by name select * from bellwether_old")
            finally:
                target.unregister("bellwether_old")
            copied.append(Copied(name, table.num_rows))
        target.commit()
    except Exception:
        target.rollback()
        raise
    return copied
