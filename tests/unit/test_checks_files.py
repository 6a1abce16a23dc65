"""Every checks file beside the SQL, proven on its fixture: the passing rows pass every check,
the broken rows fail exactly the checks the fixture names (and no other).

Fixture format (tests/fixtures/checks/<schema>.<table>.yml): `context` (rows for other tables,
inserted first), `run_date`, `pass` (rows of the guarded table) and `broken: {rows, fails}`.
Land stage: the rows are a batch in the raw contract, checked before loading. Build stage: the
rows are written to the built table (for a staging view, to the raw table under it), then
checked as a full build would be."""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from sources.contract import DATASETS, typed_frame
from transforms.runner import build, discover
from warehouse import checks, schema

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checks"
CHECKS = checks.discover_checks()
MODELS = {m.relation: m for m in discover()}
LINEAGE = {"source": "fixture", "run_id": "fixture", "loaded_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}
RUN_DATE = dt.date(2025, 1, 28)


@pytest.fixture(scope="module")
def expectations():
    return checks.Expectations()


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory):
    """Staging views and empty marts, built once; each case works on its own copy."""
    path = tmp_path_factory.mktemp("checks") / "empty.duckdb"
    with duckdb.connect(str(path)) as con:
        schema.ensure(con)
        build(con, run_date=RUN_DATE)
    return path


def insert_rows(con, table, rows):
    if not rows:
        return
    frame = pd.DataFrame(rows)
    if table.startswith("raw."):
        for k, v in LINEAGE.items():
            if k not in frame:
                frame[k] = v
    con.register("fixture_rows", frame)
    try:
        con.execute(f"insert into {table} by name select * from fixture_rows")
    finally:
        con.unregister("fixture_rows")


def land_frame(table, rows):
    name = table.split(".", 1)[1]
    frame = pd.DataFrame(rows)
    if name in DATASETS:
        ds = DATASETS[name]
        for c in ds.columns:
            if c not in frame:
                frame[c] = None
        # Columns outside the contract stay (after it), so a fixture can prove the column check.
        extra = [c for c in frame.columns if c not in ds.columns]
        return pd.concat([typed_frame(frame[list(ds.columns)], ds), frame[extra]], axis=1)
    return frame


def run_case(expectations, empty, tmp_path, cf, fixture, rows):
    copy = tmp_path / "case.duckdb"
    shutil.copy(empty, copy)
    con = duckdb.connect(str(copy))  # staging views and empty marts exist to write into
    run_date = fixture.get("run_date", RUN_DATE)
    for table, ctx_rows in (fixture.get("context") or {}).items():
        insert_rows(con, table, ctx_rows)
    if cf.stage == checks.LAND:
        results = checks.check_batch(con, land_frame(cf.table, rows), cf, run_date=run_date, expectations=expectations).results
    else:
        model = MODELS[cf.table]
        target = cf.table
        if model.materialized == "view":
            (target,) = model.depends_on  # a staging view: its raw table holds the rows
        insert_rows(con, target, rows)
        results = checks.check_built(con, cf, start_date=checks.FULL_BUILD_START, run_date=run_date, expectations=expectations)
    con.close()
    return results


def test_every_checks_file_has_a_fixture():
    missing = [t for t in CHECKS if not (FIXTURES / f"{t}.yml").exists()]
    assert not missing, f"checks files without a fixture in {FIXTURES}: {missing}"
    orphans = [p.name for p in FIXTURES.glob("*.yml") if p.stem not in CHECKS]
    assert not orphans, f"fixtures for no checks file: {orphans}"


@pytest.mark.parametrize("table", sorted(CHECKS))
def test_passing_fixture_passes_every_check(table, expectations, empty_warehouse, tmp_path):
    cf = CHECKS[table]
    fixture = yaml.safe_load((FIXTURES / f"{table}.yml").read_text())
    results = run_case(expectations, empty_warehouse, tmp_path, cf, fixture, fixture["pass"])
    assert {r.check for r in results} == {c.name for c in cf.checks}  # every check ran
    failed = {r.check: (r.unexpected_count, r.sample_keys, r.message) for r in results if not r.success}
    assert not failed


@pytest.mark.parametrize("table", sorted(CHECKS))
def test_broken_fixture_fails_exactly_the_named_checks(table, expectations, empty_warehouse, tmp_path):
    cf = CHECKS[table]
    fixture = yaml.safe_load((FIXTURES / f"{table}.yml").read_text())
    broken = fixture["broken"]
    assert set(broken["fails"]) <= {c.name for c in cf.checks}, "the fixture names a check the file lacks"
    results = run_case(expectations, empty_warehouse, tmp_path, cf, fixture, broken["rows"])
    failed = {r.check for r in results if not r.success}
    assert failed == set(broken["fails"])
    assert all(r.unexpected_count > 0 for r in results if not r.success)
