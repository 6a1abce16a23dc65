"""Shared helpers for the SQL model tests: in-memory warehouses, raw rows with the test provenance,
model selection, the sample market, and the full rebuild an incremental build must equal."""

import contextlib
import datetime as dt
import shutil

import duckdb
import pandas as pd
import pytest

from transforms.runner import SQL_DIR, build, discover
from warehouse import schema

RUN = dt.date(2026, 1, 2)
LOADED_AT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
# Every raw row a test writes carries this provenance.
PROVENANCE = {"source": "test", "run_id": "test", "loaded_at": LOADED_AT}

PRICE_COLUMNS = ("ticker", "trade_date", "close", "adj_close")
# What a price row holds when its columns do not say: no dividend, no split, 100 shares traded.
PRICE_DEFAULTS = {"dividend": 0, "split_ratio": 1, "volume": 100}
UNIVERSE_COLUMNS = ("ticker", "role", "cohort")
FUNDAMENTALS_COLUMNS = ("ticker", "period_end", "report_date", "revenue", "gross_profit", "diluted_eps", "diluted_shares")


# ---------------------------------------------------------------------------------------------
# warehouses


def new_warehouse():
    """A fresh in-memory warehouse with the schema applied."""
    con = duckdb.connect()
    schema.ensure(con)
    return con


@pytest.fixture
def mem():
    con = new_warehouse()
    yield con
    con.close()


def copy_raw_tables(source, target):
    """Copy every raw table of `source` into the same (empty) table of `target`, row for row."""
    tables = [
        r[0]
        for r in source.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'raw' and table_type = 'BASE TABLE' order by table_name"
        ).fetchall()
    ]
    for table in tables:
        target.register("raw_copy", source.sql(f"select * from raw.{table}").to_arrow_table())
        target.execute(f"insert into raw.{table} select * from raw_copy")
        target.unregister("raw_copy")


@contextlib.contextmanager
def built_in_full(con, select):
    """A fresh warehouse holding copies of `con`'s raw tables, with the `select`ed models built in
    full from them: what an incremental build on `con` must equal."""
    full = new_warehouse()
    try:
        copy_raw_tables(con, full)
        build(full, run_date=RUN, select=select)
        yield full
    finally:
        full.close()


def copy_of_sql_dir(tmp_path):
    """A copy of sql/ under tmp_path, for a test to change."""
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    return sql


# ---------------------------------------------------------------------------------------------
# raw rows


def insert_rows(con, table, rows, columns, **fixed):
    """Insert `rows`, tuples of `columns`, into `table`; every row also gets the `fixed` column
    values and the test provenance (source and run_id 'test', loaded_at LOADED_AT)."""
    rows, columns, fixed = list(rows), tuple(columns), fixed | PROVENANCE
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"{table}: row {row!r} does not match the columns {columns!r}")
    names = [*columns, *fixed]
    con.executemany(
        f"insert into {table} ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
        [(*row, *fixed.values()) for row in rows],
    )


def insert_frame(con, table, frame, **fixed):
    """Insert a DataFrame whose columns are `table`'s (many rows at once, unlike insert_rows), with
    the `fixed` column values and the test provenance."""
    fixed = fixed | PROVENANCE
    columns = list(frame.columns)
    con.register("frame_to_insert", frame)
    try:
        con.execute(
            f"insert into {table} ({', '.join(columns + list(fixed))}) "
            f"select {', '.join(columns + ['?'] * len(fixed))} from frame_to_insert",
            list(fixed.values()),
        )
    finally:
        con.unregister("frame_to_insert")


def price_defaults(columns):
    return {k: v for k, v in PRICE_DEFAULTS.items() if k not in columns}


def insert_prices(con, rows, columns=PRICE_COLUMNS):
    """rows: tuples of `columns`, (ticker, trade_date, close, adj_close) unless told; PRICE_DEFAULTS
    fill the rest."""
    insert_rows(con, "raw.prices_daily", rows, columns, **price_defaults(columns))


def insert_many_prices(con, rows, columns=PRICE_COLUMNS):
    """As insert_prices, through a DataFrame: for thousands of rows (with no None in them)."""
    insert_price_frame(con, pd.DataFrame(rows, columns=list(columns)))


def insert_price_frame(con, frame):
    """A DataFrame of price columns (ticker, trade_date, close, adj_close at least); PRICE_DEFAULTS
    fill the rest."""
    insert_frame(con, "raw.prices_daily", frame, **price_defaults(frame.columns))


def insert_universe(con, rows, columns=UNIVERSE_COLUMNS):
    """rows: tuples of `columns`, (ticker, role, cohort) unless told; the name is the ticker and
    the sector 'Test' (no mart reads it)."""
    at = tuple(columns).index("ticker")
    insert_rows(con, "raw.universe", [(*r, r[at]) for r in rows], (*columns, "name"), sector="Test")


def insert_fundamentals(con, rows, columns=FUNDAMENTALS_COLUMNS, **fixed):
    """rows: tuples of `columns`, FUNDAMENTALS_COLUMNS unless told."""
    insert_rows(con, "raw.fundamentals_quarterly", rows, columns, **fixed)


def insert_snapshots(con, rows, columns):
    """rows: tuples of `columns` of raw.valuation_snapshots."""
    insert_rows(con, "raw.valuation_snapshots", rows, columns)


def load_sample(con, tickers, start, end, fundamentals_from):
    """Load the sample market as the nightly load stores it: its universe, prices and valuation
    snapshots from `start` to `end`, and its quarters from `fundamentals_from`. Returns the source."""
    from sources.sample import SampleSource
    from warehouse.load import load_batch, load_universe

    sample = SampleSource()
    load_universe(con, sample.universe, source="sample", run_id="t", loaded_at=LOADED_AT)
    for batch in (
        sample.prices(tickers, start, end),
        sample.fundamentals(tickers, fundamentals_from, end),
        sample.valuation_snapshots(tickers, start, end),
    ):
        load_batch(con, batch, source="sample", run_id="t", loaded_at=LOADED_AT)
    return sample


# ---------------------------------------------------------------------------------------------
# models and marts


def models_up_to(*names):
    """The named models and everything they read, so a test builds only what it needs."""
    models = {m.relation: m for m in discover()}
    wanted, todo = set(), [r for r in models if r.split(".")[1] in names]
    while todo:
        rel = todo.pop()
        if rel in models and rel not in wanted:
            wanted.add(rel)
            todo += list(models[rel].depends_on)
    return sorted(models[r].name for r in wanted)


def build_up_to(con, *names, **kw):
    """Build the named models and everything they read."""
    return build(con, run_date=RUN, select=models_up_to(*names), **kw)


def one_row(con, sql, params=()):
    """The one row `sql` returns, as a dict by column name."""
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0]))
