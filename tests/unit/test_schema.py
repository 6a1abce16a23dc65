"""The warehouse schema: fresh creation, the DDL agrees with the raw contract, ordered migrations."""

import datetime as dt

import duckdb
import pytest

from sources.contract import DATASETS, LINEAGE_COLUMNS
from warehouse import audit, schema

DUCK_TYPES = {"VARCHAR": "VARCHAR", "DATE": "DATE", "DOUBLE": "DOUBLE", "BIGINT": "BIGINT", "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def test_fresh_warehouse_has_every_schema_and_the_latest_version(con):
    schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata").fetchall()}
    assert {"raw", "staging", "marts", "audit"} <= schemas
    assert schema.current_version(con) == schema.latest_version()
    assert {t for _, t in schema.ddl_tables()} >= {"prices_daily", "option_quotes", "putcall_daily", "fundamentals_quarterly", "valuation_snapshots", "universe", "runs", "quarantine"}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_raw_ddl_matches_the_contract(con, name):
    ds = DATASETS[name]
    got = schema.table_columns(con, "raw", name)
    want = [(c, DUCK_TYPES[t]) for c, t in ds.columns.items()] + [
        ("source", "VARCHAR"), ("run_id", "VARCHAR"), ("loaded_at", "TIMESTAMP WITH TIME ZONE")
    ]
    assert got == want
    assert tuple(c for c, _ in got[-3:]) == LINEAGE_COLUMNS
    # DuckLake has no primary keys: the DDL states the key the loader keeps unique, and it is
    # the contract's.
    header = next(line for line in (schema.SQL_DIR / "raw" / f"{name}.sql").read_text().splitlines() if line.startswith("-- Key:"))
    assert tuple(k.strip() for k in header.removeprefix("-- Key:").split("(")[0].split(",")) == ds.key


def test_opening_an_up_to_date_lake_as_a_writer_commits_nothing(tmp_path):
    """Every commit is a snapshot that maintenance has to expire: a writer opening a lake whose
    schema is current makes none."""
    from tests.conftest import lake_target
    from warehouse import lake
    from warehouse.connect import writer

    target = lake_target(tmp_path)
    with writer(target) as c:
        first = lake.current_snapshot(c)
    with writer(target) as c:
        assert lake.current_snapshot(c) == first


def test_ensure_is_idempotent(con):
    assert schema.ensure(con) == schema.latest_version()
    assert con.execute("select count(*) from audit.schema_version").fetchone()[0] == len(schema.MIGRATIONS)


V1_DDL = """
create table if not exists raw.things (id integer primary key, name varchar not null);
"""
V2_DDL = """
create table if not exists raw.things (id integer primary key, name varchar not null, size double);
create table if not exists raw.extras (id integer primary key);
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_older_file_upgrades_in_place_without_losing_rows(tmp_path):
    db = tmp_path / "old.duckdb"
    v1 = (schema.Migration(1, "baseline"),)
    v2 = v1 + (schema.Migration(2, "things get a size", "alter table raw.things add column size double"),)
    with duckdb.connect(str(db)) as c:
        schema.ensure(c, migrations=v1, ddl=[_write(tmp_path, "v1.sql", V1_DDL)])
        c.execute("insert into raw.things values (1, 'a'), (2, 'b')")
    with duckdb.connect(str(db)) as c:
        assert schema.ensure(c, migrations=v2, ddl=[_write(tmp_path, "v2.sql", V2_DDL)]) == 2
        assert c.execute("select * from raw.things order by id").fetchall() == [(1, "a", None), (2, "b", None)]
        assert [r[0] for r in c.execute("select version from audit.schema_version order by 1").fetchall()] == [1, 2]
        assert c.execute("select count(*) from raw.extras").fetchone()[0] == 0  # new table from the DDL
    # A fresh file from the v2 DDL has the same shape as the upgraded one.
    with duckdb.connect(str(tmp_path / "fresh.duckdb")) as c:
        schema.ensure(c, migrations=v2, ddl=[_write(tmp_path, "v2.sql", V2_DDL)])
        fresh = schema.table_columns(c, "raw", "things")
    with duckdb.connect(str(db)) as c:
        assert schema.table_columns(c, "raw", "things") == fresh


def test_failed_migration_leaves_the_last_good_version(tmp_path):
    db = tmp_path / "old.duckdb"
    v1 = (schema.Migration(1, "baseline"),)
    bad = v1 + (schema.Migration(2, "broken", "alter table raw.things add column size double; select * from no_such_table"),)
    with duckdb.connect(str(db)) as c:
        schema.ensure(c, migrations=v1, ddl=[_write(tmp_path, "v1.sql", V1_DDL)])
        c.execute("insert into raw.things values (1, 'a')")
        with pytest.raises(schema.SchemaError, match="migration 2 \\(broken\\) failed"):
            schema.ensure(c, migrations=bad, ddl=[_write(tmp_path, "v1.sql", V1_DDL)])
        assert schema.current_version(c) == 1
        assert [r[0] for r in c.execute("select column_name from information_schema.columns where table_name = 'things'").fetchall()] == ["id", "name"]


def test_newer_warehouse_is_refused(tmp_path):
    with duckdb.connect(str(tmp_path / "new.duckdb")) as c:
        schema.ensure(c)
        c.execute("insert into audit.schema_version values (999, 'from the future', now())")
        with pytest.raises(schema.SchemaError, match="schema version 999, newer than"):
            schema.ensure(c)


def test_foreign_database_is_not_guessed_at(tmp_path):
    with duckdb.connect(str(tmp_path / "foreign.duckdb")) as c:
        c.execute("create schema raw; create table raw.prices_daily (x int)")
        with pytest.raises(schema.SchemaError, match="no audit.schema_version"):
            schema.ensure(c)


def _v7_load_batches(tmp_path):
    """audit.load_batches as it was before migration 8."""
    text = (schema.SQL_DIR / "audit" / "load_batches.sql").read_text()
    v7 = text[: text.index("    notes varchar,")] + "    notes varchar\n);\n"
    return _write(tmp_path, "load_batches.sql", v7)


def _older_warehouse(db, version: int, older_ddl: dict) -> duckdb.DuckDBPyConnection:
    """A warehouse as Bellwether wrote it at `version`: the migrations up to it, and the DDL
    files named in `older_ddl` (file name -> that file as it was then) instead of today's."""
    c = duckdb.connect(str(db))
    schema.ensure(c, migrations=schema.MIGRATIONS[:version], ddl=[older_ddl.get(p.name, p) for p in schema.ddl_files()])
    return c


def _fresh_columns(tmp_path, table: str) -> list:
    with duckdb.connect(str(tmp_path / "fresh.duckdb")) as c:
        schema.ensure(c)
        return schema.table_columns(c, "audit", table)


def test_a_version_7_warehouse_owes_a_rebuild_over_the_loads_of_runs_that_did_not_finish(tmp_path):
    """Migration 8 adds audit.load_batches.first_changed and built_at. A load of a run that
    ended succeeded or partial was built; one of a failed (or killed) run owes a rebuild from
    its window's first day when it wrote rows."""
    db = tmp_path / "v7.duckdb"
    with _older_warehouse(db, 7, {"load_batches.sql": _v7_load_batches(tmp_path)}) as c:
        c.execute(
            "insert into audit.runs (run_id, flow, started_at, status) values "
            "('ok', 'nightly', now(), 'succeeded'), ('bad', 'nightly', now(), 'failed'), ('killed', 'nightly', now(), 'running')"
        )
        c.execute(
            "insert into audit.load_batches values "
            "('ok', 'raw.prices_daily', 's', '2025-01-20', '2025-01-27', 10, 2, 0, 8, 0, now(), null), "
            "('bad', 'raw.prices_daily', 's', '2025-01-21', '2025-01-28', 10, 2, 0, 8, 0, now(), null), "
            "('killed', 'raw.prices_daily', 's', '2025-01-22', '2025-01-29', 10, 0, 0, 10, 0, now(), null)"
        )
    with duckdb.connect(str(db)) as c:
        assert schema.ensure(c) == 8
        assert c.execute(
            "select run_id, first_changed, built_at is not null from audit.load_batches order by run_id"
        ).fetchall() == [("bad", dt.date(2025, 1, 21), False), ("killed", None, False), ("ok", None, True)]
        assert audit.unbuilt_since(c) == dt.date(2025, 1, 21)
        assert schema.table_columns(c, "audit", "load_batches") == _fresh_columns(tmp_path, "load_batches")


def test_a_version_6_warehouse_gets_retryable_fetch_outcomes_classified_by_their_reasons(tmp_path):
    """Migration 7 adds audit.fetch_outcomes.retryable; the rows already there are classified by
    the one failure the Yahoo source never retried, "unknown or delisted ticker"."""
    v6_outcomes = (schema.SQL_DIR / "audit" / "fetch_outcomes.sql").read_text().replace(",\n    retryable boolean", "")
    assert "retryable" not in v6_outcomes.split("create table")[1]
    db = tmp_path / "v6.duckdb"
    older = {"fetch_outcomes.sql": _write(tmp_path, "fetch_outcomes.sql", v6_outcomes), "load_batches.sql": _v7_load_batches(tmp_path)}
    with _older_warehouse(db, 6, older) as c:
        c.execute(
            "insert into audit.fetch_outcomes values "
            "('r', 'prices_daily', 'NVDA', 'ok', 4, 1, null, 'live', now()), "
            "('r', 'prices_daily', 'SPY', 'failed', 0, 5, 'rate limited by Yahoo (HTTP 429) for SPY (prices_daily); gave up after 5 attempts', 'live', now()), "
            "('r', 'prices_daily', 'ZZZQ', 'failed', 0, 1, 'unknown or delisted ticker ZZZQ (prices_daily): Yahoo answered HTTP 404', 'live', now())"
        )
    with duckdb.connect(str(db)) as c:
        assert schema.ensure(c) == schema.latest_version()
        assert c.execute("select ticker, retryable from audit.fetch_outcomes order by ticker").fetchall() == [
            ("NVDA", None), ("SPY", True), ("ZZZQ", False),
        ]
        assert schema.table_columns(c, "audit", "fetch_outcomes") == _fresh_columns(tmp_path, "fetch_outcomes")
