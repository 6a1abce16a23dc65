import datetime as dt

import duckdb
import pytest

from warehouse import schema

LOADED_AT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def mem():
    con = duckdb.connect()
    schema.ensure(con)
    yield con
    con.close()


def insert_prices(con, rows):
    """rows: (ticker, trade_date, close, adj_close) tuples."""
    con.executemany(
        "insert into raw.prices_daily (ticker, trade_date, close, adj_close, dividend, split_ratio, volume, source, run_id, loaded_at) "
        "values (?, ?, ?, ?, 0, 1, 100, 'test', 'test', ?)",
        [(t, d, c, a, LOADED_AT) for t, d, c, a in rows],
    )
