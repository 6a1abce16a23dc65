import duckdb
import pytest

RAW_TABLES = ("prices_daily", "putcall_daily", "fundamentals_quarterly", "option_quotes", "valuation_snapshots", "universe")


@pytest.fixture(autouse=True)
def _prefect(prefect_harness):
    """Every integration test runs flows against the session's Prefect test server."""
    yield


def snapshot(path, tables=None):
    """Every row of the given tables, sorted: two equal snapshots mean identical tables."""
    tables = tables or [f"raw.{t}" for t in RAW_TABLES] + ["marts.technicals_daily"]
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"select * from {t} order by all").fetchall() for t in tables}


def scalar(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchone()[0]


def fetch(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
