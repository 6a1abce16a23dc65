"""DuckLake: the warehouse as a catalog database plus Parquet files.

Why DuckLake (measured on this project's 2-core machine, see the README): readers attach
read-only and read a snapshot, so a writer never refuses them and they never stop a writer; every
commit is a snapshot, which gives time travel; the catalog can be a SQLite file (one machine) or
PostgreSQL with the files on S3 (a team).

Publishing. A run commits as it goes (each load, the build), so that a crash keeps what was
loaded. Readers must not see half a night, so they do not read the newest commit: they read the
*published* snapshot, the last commit a run made when it finished, which carries DuckLake's
commit message `publish` (and the run id in its extra info). `audit.runs.snapshot_id` records
each run's published snapshot; time travel (`--as-of`) picks one of them.

Extensions come from the `duckdb-extension-*` packages (pinned with DuckDB) and are loaded by
path: nothing is downloaded, and a machine without network works.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from warehouse.target import LAKE_CATALOG_NAME as CATALOG
from warehouse.target import LAKE, POSTGRES, SQLITE, Target

PUBLISH = "publish"
AUTHOR = "bellwether"
# Rows per Parquet row group in the raw tables' files (DuckLake's default is 122,880). A night's
# option quotes (about 100,000 rows at S&P 500 scale) then split in two row groups that both
# cores encode, instead of one: measured 56 -> 33 ms a night with warehouse/load.py's Arrow
# chunks. Reads lose nothing measurable: each raw file is one load's dates.
RAW_ROW_GROUP_ROWS = 65_536
# DuckDB's names for the extensions (file stems) and the packages that carry them.
_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


class LakeError(RuntimeError):
    """The lake cannot be opened as asked (missing, not initialised, no such snapshot)."""


class NotPublished(LakeError):
    """No run has published to this lake yet."""


def extension_path(name: str) -> Path:
    """The extension file shipped in its PyPI package for this DuckDB version."""
    package = _PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LakeError(f"the DuckDB extension {name} is missing: install the package {package.replace('_', '-')}=={duckdb.__version__}")
    base = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    path = base / f"{name}.duckdb_extension"
    if not path.exists():
        found = sorted(p.name for p in (base.parent.glob("*"))) if base.parent.exists() else []
        raise LakeError(
            f"the DuckDB extension {name} for DuckDB {duckdb.__version__} is not in {base.parent} (found {found}): "
            f"pin {package.replace('_', '-')}=={duckdb.__version__}"
        )
    return path


def extensions_for(target: Target, data_path: str | None = None) -> list[str]:
    names = ["ducklake", "sqlite_scanner" if target.catalog == SQLITE else "postgres_scanner"]
    if _is_remote_path(data_path) or target.catalog == POSTGRES:
        names.append("httpfs")
    return names


def _is_remote_path(path: str | None) -> bool:
    return bool(path) and "://" in str(path)


def load_extensions(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    loaded = {r[0] for r in con.execute("select extension_name from duckdb_extensions() where loaded").fetchall()}
    for name in names:
        if name not in loaded:
            con.execute(f"load '{extension_path(name)}'")


def s3_secret(con: duckdb.DuckDBPyConnection, env: dict | None = None) -> bool:
    """A DuckDB secret for S3 from the standard AWS variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, and AWS_ENDPOINT_URL for S3-compatible
    storage such as MinIO or moto). False when no key is set (public buckets, or none needed)."""
    env = os.environ if env is None else env
    key = env.get("AWS_ACCESS_KEY_ID")
    if not key:
        return False
    options = {"KEY_ID": key, "SECRET": env.get("AWS_SECRET_ACCESS_KEY", "")}
    if env.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
    options["REGION"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    extra = ""
    if endpoint:
        url = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["ENDPOINT"] = url.netloc
        # Self-hosted S3 (MinIO, moto) serves buckets as paths, not as host names.
        extra = f", URL_STYLE 'path', USE_SSL {'true' if url.scheme == 'https' else 'false'}"
    body = ", ".join(f"{k} '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in options.items())
    con.execute(f"create or replace temporary secret bellwether_s3 (TYPE s3, {body}{extra})")
    return True


def prepare_sqlite_catalog(path: Path) -> None:
    """Create (or convert) the SQLite catalog in WAL mode. Measured here: in SQLite's default
    rollback journal, a reader holding a transaction open (a notebook mid-query) made the
    writer's commit fail with "database is locked"; in WAL mode readers and the writer never
    block each other. WAL is a property of the file, so this is done once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30)
    try:
        if db.execute("pragma journal_mode").fetchone()[0].lower() != "wal":
            db.execute("pragma journal_mode=wal")
        _store_data_path(db, Target(LAKE, str(path), SQLITE).default_data_path)
    finally:
        db.close()


def _store_data_path(db: sqlite3.Connection, data_path: str) -> None:
    """Record in a SQLite catalog that its files are beside it. A catalog keeps the folder its
    files were first written to; after the warehouse folder is copied or moved (a backup,
    another disk), a plain `ATTACH 'ducklake:sqlite:...'` (a notebook's, the DuckDB CLI's)
    would read the old folder's files, or find none. Bellwether's own attaches pass the path."""
    has_metadata = db.execute("select count(*) from sqlite_master where name = 'ducklake_metadata'").fetchone()[0]
    if has_metadata:
        with db:
            db.execute(
                "update ducklake_metadata set value = ? where key = 'data_path' and scope is null and value != ?",
                [data_path, data_path],
            )


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def attach_sql(target: Target, *, read_only: bool, snapshot: int | None = None, data_path: str | None = None) -> str:
    """The ATTACH statement for the lake. A SQLite lake's files live beside its catalog; the
    path is given on every attach (with OVERRIDE_DATA_PATH) so that a warehouse folder copied or
    moved elsewhere (a backup, another disk) still finds its files. A PostgreSQL lake reads its
    data path from its catalog, where `bellwether init` stored it."""
    options = []
    if target.catalog == SQLITE:
        options += [f"DATA_PATH {_quote(target.default_data_path)}", "OVERRIDE_DATA_PATH true"]
    elif data_path:
        options.append(f"DATA_PATH {_quote(data_path)}")
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    where = _quote(f"ducklake:{target.catalog}:{target.location}")
    return f"ATTACH {where} AS {CATALOG}" + (f" ({', '.join(options)})" if options else "")


def new_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that loads only the extensions Bellwether ships (never downloads)."""
    return duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})


def exists(target: Target) -> bool:
    """Whether the lake's catalog holds a DuckLake (without creating anything)."""
    if target.catalog == SQLITE:
        if not target.path.exists():
            return False
        db = sqlite3.connect(f"file:{target.path}?mode=ro", uri=True, timeout=30)
        try:
            return bool(db.execute("select count(*) from sqlite_master where name = 'ducklake_metadata'").fetchone()[0])
        finally:
            db.close()
    from warehouse import pglock

    return pglock.has_table(target.location, "ducklake_metadata")


def open_lake(
    target: Target, *, read_only: bool, snapshot: int | None = None, create: bool = False, data_path: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection with the lake attached as `bellwether` and in use (so `raw.prices_daily`
    means the lake's table). `create`: make a new lake if there is none (the writer of a
    SQLite lake; `bellwether init` for PostgreSQL), its files at `data_path` (a lake that
    exists keeps the data path its catalog holds)."""
    if exists(target):
        data_path = None
        if target.catalog == SQLITE and not read_only:
            prepare_sqlite_catalog(target.path)  # a catalog made elsewhere: WAL from now on
    elif not create:
        raise LakeMissing(target)
    elif target.catalog == SQLITE:
        prepare_sqlite_catalog(target.path)
    elif not data_path:
        raise LakeError(
            f"{target.describe()} holds no DuckLake yet: create it with "
            "`bellwether init --data-path s3://BUCKET/PREFIX/` (where its Parquet files go)"
        )
    con = new_connection()
    try:
        names = extensions_for(target, data_path)
        load_extensions(con, names)
        if "httpfs" in names:  # the secret type comes with httpfs; a local lake needs neither
            s3_secret(con)
        con.execute(attach_sql(target, read_only=read_only, snapshot=snapshot, data_path=data_path))
        con.execute(f"use {CATALOG}")
    except duckdb.Error as exc:
        con.close()
        if snapshot is not None and "snapshot" in str(exc).lower():
            raise LakeError(f"snapshot {snapshot} of {target.describe()} is not available: {exc}") from None
        raise
    except Exception:
        con.close()
        raise
    return con


def tune(con: duckdb.DuckDBPyConnection) -> None:
    """Set the lake's write options Bellwether relies on (`RAW_ROW_GROUP_ROWS`), unless its
    catalog already holds them: they persist in the catalog and make no snapshot."""
    held = con.execute(
        f"select value from {CATALOG}.options() where option_name = 'parquet_row_group_size' "
        "and scope = 'SCHEMA' and scope_entry = 'raw'"
    ).fetchall()
    if held != [(str(RAW_ROW_GROUP_ROWS),)]:
        con.execute(f"call {CATALOG}.set_option('parquet_row_group_size', {RAW_ROW_GROUP_ROWS}, schema => 'raw')")


def reattach(con: duckdb.DuckDBPyConnection, target: Target, *, snapshot: int) -> duckdb.DuckDBPyConnection:
    """Attach the lake again on the same connection, read-only at `snapshot` (the extensions
    stay loaded: loading them costs more than the attach)."""
    con.execute("use memory")
    con.execute(f"detach {CATALOG}")
    try:
        con.execute(attach_sql(target, read_only=True, snapshot=snapshot))
    except duckdb.Error as exc:
        raise LakeError(f"snapshot {snapshot} of {target.describe()} is not available: {exc}") from None
    con.execute(f"use {CATALOG}")
    return con


class LakeMissing(LakeError, FileNotFoundError):
    def __init__(self, target: Target) -> None:
        if target.catalog == SQLITE:
            text = (f"no warehouse at {target.path}: run `bellwether run` (or `make run`) first, or point --warehouse / "
                    "BELLWETHER_WAREHOUSE at an existing one")
        else:
            text = (f"{target.describe()} holds no DuckLake: create it with `bellwether init --data-path s3://BUCKET/PREFIX/`"
                    ", or check the connection string")
        super().__init__(text)


# Snapshots ----------------------------------------------------------------------------------


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's current database is a DuckLake."""
    return con.execute(
        "select count(*) from duckdb_databases() where database_name = current_database() and type = 'ducklake'"
    ).fetchone()[0] > 0


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The snapshot the connection's transaction reads (inside a transaction: the one it began on)."""
    return con.execute(f"select id from {CATALOG}.current_snapshot()").fetchone()[0]


def published_snapshots(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every published snapshot, oldest first: id, time (UTC), run id."""
    rows = con.execute(
        f"select snapshot_id, snapshot_time, commit_extra_info from {CATALOG}.snapshots() "
        "where commit_message = ? order by snapshot_id",
        [PUBLISH],
    ).fetchall()
    out = []
    for snapshot_id, at, extra in rows:
        try:
            info = json.loads(extra) if extra else {}
        except json.JSONDecodeError:
            info = {}
        out.append({"snapshot_id": snapshot_id, "at": at, "run_id": info.get("run_id"), "status": info.get("status")})
    return out


def latest_published(con: duckdb.DuckDBPyConnection) -> int | None:
    return con.execute(
        f"select max(snapshot_id) from {CATALOG}.snapshots() where commit_message = ?", [PUBLISH]
    ).fetchone()[0]


def snapshot_info(con: duckdb.DuckDBPyConnection) -> dict:
    """The snapshot a connection reads: its id, when it was committed, and the run that
    published it (None for a snapshot no run published)."""
    snapshot_id = current_snapshot(con)
    at, message, extra = con.execute(
        f"select snapshot_time, commit_message, commit_extra_info from {CATALOG}.snapshots() where snapshot_id = ?",
        [snapshot_id],
    ).fetchone()
    try:
        info = json.loads(extra) if extra else {}
    except json.JSONDecodeError:
        info = {}
    return {"snapshot_id": snapshot_id, "at": at, "published": message == PUBLISH, "run_id": info.get("run_id")}


def tag_publish(con: duckdb.DuckDBPyConnection, *, run_id: str, status: str) -> int:
    """Mark the open transaction's commit as the run's publication; the snapshot id it will get.

    Call inside the transaction, under the writer lock: nobody else commits meanwhile, so the
    commit becomes the snapshot after the one the transaction began on. `confirm_publish`
    checks that after the commit."""
    info = json.dumps({"run_id": run_id, "status": status})
    con.execute(f"call {CATALOG}.set_commit_message(?, ?, extra_info => ?)", [AUTHOR, PUBLISH, info])
    return current_snapshot(con) + 1


def last_committed(con: duckdb.DuckDBPyConnection) -> int | None:
    row = con.execute(f"select id from {CATALOG}.last_committed_snapshot()").fetchone()
    return row[0] if row else None


def snapshot_at(con: duckdb.DuckDBPyConnection, at: dt.datetime) -> int | None:
    """The published snapshot a reader saw at `at`: the last published on or before it."""
    return con.execute(
        f"select max(snapshot_id) from {CATALOG}.snapshots() where commit_message = ? and snapshot_time <= ?",
        [PUBLISH, at],
    ).fetchone()[0]


def data_path_of(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(f"select value from {CATALOG}.options() where option_name = 'data_path'").fetchone()
    return row[0] if row else None


def file_counts(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Per table: data files, delete files and bytes of the current snapshot (what compaction
    is for: small nightly writes make many small files)."""
    rows = con.execute(
        f"""
        select s.schema_name, i.table_name, i.file_count, i.file_size_bytes, i.delete_file_count
        from ducklake_table_info('{CATALOG}') as i
        inner join __ducklake_metadata_{CATALOG}.ducklake_schema as s
            on i.schema_id = s.schema_id and s.end_snapshot is null
        order by all
        """
    ).fetchall()
    return {f"{s}.{t}": {"files": int(n), "bytes": int(b), "delete_files": int(d)} for s, t, n, b, d in rows}


# Maintenance --------------------------------------------------------------------------------

DEFAULT_GRACE = dt.timedelta(hours=24)
# An incremental mart deletes and rewrites its look-back every night, so each night's small file
# is mostly deleted by the next night (5 of 6 sessions): rewriting the files at least half
# deleted lets them merge. The full build's large file, a few sessions deleted, is left alone.
# (DuckLake's default threshold, 0.95, rewrote none of them: measured on five sample nights.)
REWRITE_DELETED_SHARE = 0.5


def unpublished_snapshots(con: duckdb.DuckDBPyConnection, before: dt.datetime) -> list[int]:
    """Snapshots older than `before` that no run published and that are not the newest: the
    intermediate commits of runs (each load, the build). Nobody reads them (readers read
    published snapshots), so maintenance expires them."""
    return [r[0] for r in con.execute(
        f"""
        select snapshot_id from {CATALOG}.snapshots()
        where commit_message is distinct from ? and snapshot_time < ?
            and snapshot_id < (select max(snapshot_id) from {CATALOG}.snapshots())
            and snapshot_id > 0
        order by snapshot_id
        """,
        [PUBLISH, before],
    ).fetchall()]


def maintain(
    con: duckdb.DuckDBPyConnection,
    *,
    now: dt.datetime,
    grace: dt.timedelta = DEFAULT_GRACE,
    keep_published: dt.timedelta | None = None,
) -> dict:
    """Keep the lake fast and bounded; call under the writer lock. Small nightly writes leave
    small files and delete files behind, and every commit is a snapshot:
    - inlined rows (small inserts DuckLake keeps in the catalog) go to Parquet files;
    - files at least half deleted are rewritten without their deleted rows;
    - adjacent small files are merged (time travel still sees every snapshot's rows);
    - snapshots older than `grace` that no run published are expired; published ones older
      than `keep_published` too (default: kept, for time travel), the newest always kept;
    - files no snapshot needs any more, and files a killed writer left behind, are deleted once
      older than `grace` (a reader that began before may still be reading them).
    Returns what was done and the file counts before and after."""
    before_counts = file_counts(con)
    steps: dict[str, object] = {}
    steps["flushed_tables"] = len(con.execute(f"call ducklake_flush_inlined_data('{CATALOG}')").fetchall())
    steps["rewritten_tables"] = len(con.execute(
        f"call ducklake_rewrite_data_files('{CATALOG}', delete_threshold => ?)", [REWRITE_DELETED_SHARE]
    ).fetchall())
    # After the rewrite: a rewritten file has no deletes left, so it can merge with its neighbours.
    steps["merged_tables"] = len(con.execute(f"call ducklake_merge_adjacent_files('{CATALOG}')").fetchall())
    expire = unpublished_snapshots(con, now - grace)
    if keep_published is not None:
        newest = latest_published(con)
        expire += [p["snapshot_id"] for p in published_snapshots(con)
                   if p["at"] < now - keep_published and p["snapshot_id"] != newest]
    if expire:
        con.execute(f"call ducklake_expire_snapshots('{CATALOG}', versions => ?)", [sorted(set(expire))])
    steps["expired_snapshots"] = len(set(expire))
    steps["deleted_files"] = len(con.execute(
        f"call ducklake_cleanup_old_files('{CATALOG}', older_than => ?)", [now - grace]
    ).fetchall())
    steps["deleted_orphans"] = len(con.execute(
        f"call ducklake_delete_orphaned_files('{CATALOG}', older_than => ?)", [now - grace]
    ).fetchall())
    after_counts = file_counts(con)
    total = lambda counts, key: sum(c[key] for c in counts.values())  # noqa: E731
    return steps | {
        "files_before": total(before_counts, "files") + total(before_counts, "delete_files"),
        "files_after": total(after_counts, "files") + total(after_counts, "delete_files"),
        "bytes_after": total(after_counts, "bytes"),
    }


def maintenance_due(con: duckdb.DuckDBPyConnection, *, max_files_per_table: int = 64) -> bool:
    """Whether a table has gathered enough files (data and delete files) to merge."""
    return any(c["files"] + c["delete_files"] > max_files_per_table for c in file_counts(con).values())


def copy_sqlite_lake(source: Target, catalog: Path) -> Target:
    """Copy a SQLite lake to `catalog` (its files to the folder beside it): a consistent copy
    of its last commit, for a backup or a test. The catalog is copied first with SQLite's
    backup API (a plain file copy can miss commits still in the WAL), then the files it names;
    run it under the writer lock if a writer could be compacting meanwhile."""
    import shutil

    if source.catalog != SQLITE:
        raise LakeError(f"copy_sqlite_lake copies a SQLite lake, not {source.describe()}")
    catalog = Path(catalog).resolve()
    dest = Target(LAKE, str(catalog), SQLITE)
    for stale in (catalog, catalog.with_name(catalog.name + "-wal"), catalog.with_name(catalog.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(dest.default_data_path, ignore_errors=True)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source.path}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(catalog)
        try:
            src.backup(dst)
            dst.execute("pragma journal_mode=wal")
            _store_data_path(dst, dest.default_data_path)
        finally:
            dst.close()
    finally:
        src.close()
    if Path(source.default_data_path).exists():
        shutil.copytree(source.default_data_path, dest.default_data_path)
    return dest
