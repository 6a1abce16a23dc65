"""marts.technicals_daily on inline rows: hand-computed values, an independent pandas check,
and incremental builds equal to full ones."""

import datetime as dt
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from sources import calendar
from tests.sql.conftest import insert_prices
from transforms.runner import SQL_DIR, ModelError, build
from warehouse import schema

RUN = dt.date(2026, 1, 2)
COLS = "ticker, trade_date, close, return_1d_pct, sma_50, sma_100, sma_200, pct_to_sma_50, pct_to_sma_100, pct_to_sma_200"


def rows(con, where="true"):
    return con.execute(f"select {COLS} from marts.technicals_daily where {where} order by ticker, trade_date").fetchall()


def test_returns_use_adj_close_and_short_windows_are_null(mem):
    # A $1 dividend on day 2: the close is flat, but the adjusted close rose 1/99.
    insert_prices(mem, [("X", dt.date(2025, 1, 2), 100.0, 99.0), ("X", dt.date(2025, 1, 3), 100.0, 100.0), ("X", dt.date(2025, 1, 6), 110.0, 110.0)])
    build(mem, run_date=RUN)
    got = rows(mem)
    assert got[0][3] is None
    assert got[1][3] == pytest.approx(100 * (100 / 99 - 1))
    assert got[2][3] == pytest.approx(10.0)
    assert all(r[4] is None and r[5] is None and r[6] is None and r[7] is None for r in got)


def test_fifty_day_average_by_hand(mem):
    days = calendar.sessions("2024-01-02", "2024-12-31")[:51]
    insert_prices(mem, [("X", d, float(i + 1), float(i + 1)) for i, d in enumerate(days)])
    build(mem, run_date=RUN)
    got = rows(mem)
    assert got[48][4] is None  # 49 closes: not enough for a 50-day average
    assert got[49][4] == pytest.approx(25.5)  # mean of 1..50
    assert got[49][7] == pytest.approx(100 * (25.5 / 50 - 1))  # -49.0: the average is 49% below the close
    assert got[50][4] == pytest.approx(26.5)  # mean of 2..51
    assert got[50][7] == pytest.approx(100 * (26.5 / 51 - 1))
    assert got[50][5] is None


def synthetic(seed=1, n=320):
    rng = np.random.default_rng(seed)
    days = calendar.sessions("2023-01-03", "2025-12-31")[:n]
    out = []
    for t, drop in (("AAA", set()), ("BBB", set(rng.choice(n, 25, replace=False)))):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        adj = close * np.linspace(0.95, 1.0, n)
        out += [(t, days[i], float(close[i]), float(adj[i])) for i in range(n) if i not in drop]
    return out


def pandas_technicals(data):
    f = pd.DataFrame(data, columns=["ticker", "trade_date", "close", "adj_close"]).sort_values(["ticker", "trade_date"])
    g = f.groupby("ticker")
    f["return_1d_pct"] = 100 * (f["adj_close"] / g["adj_close"].shift(1) - 1)
    for n in (50, 100, 200):
        f[f"sma_{n}"] = g["close"].transform(lambda s: s.rolling(n, min_periods=n).mean())
        f[f"pct_to_sma_{n}"] = 100 * (f[f"sma_{n}"] / f["close"] - 1)
    return f


def test_matches_an_independent_pandas_computation(mem):
    data = synthetic()
    insert_prices(mem, data)
    build(mem, run_date=RUN)
    got = pd.DataFrame(rows(mem), columns=[c.strip() for c in COLS.split(",")])
    want = pandas_technicals(data)
    assert len(got) == len(want)
    for c in ("return_1d_pct", "sma_50", "sma_100", "sma_200", "pct_to_sma_50", "pct_to_sma_100", "pct_to_sma_200"):
        np.testing.assert_allclose(got[c].astype(float).to_numpy(), want[c].to_numpy(), rtol=1e-10, equal_nan=True, err_msg=c)
    assert got["sma_200"].notna().sum() == (320 - 199) + (320 - 25 - 199)


def test_incremental_build_equals_a_full_build(mem):
    data = synthetic(seed=2)
    early = [r for r in data if r[1] < dt.date(2024, 1, 1)]
    insert_prices(mem, early)
    build(mem, run_date=RUN)  # the first build is full
    # A later night: new sessions arrive and a recent close is restated.
    restated_day = max(r[1] for r in early)
    mem.execute("update raw.prices_daily set close = close * 1.01 where trade_date = ?", [restated_day])
    insert_prices(mem, [r for r in data if r[1] >= dt.date(2024, 1, 1)])
    results = build(mem, run_date=RUN, since=restated_day)
    tech = next(r for r in results if r.relation == "marts.technicals_daily")
    assert tech.mode == "incremental" and tech.rows_written < tech.rows
    incremental = rows(mem)

    full = duckdb.connect()
    schema.ensure(full)
    insert_prices(full, mem.execute("select ticker, trade_date, close, adj_close from raw.prices_daily").fetchall())
    build(full, run_date=RUN)
    assert incremental == rows(full)


def test_a_failed_build_publishes_nothing(mem, tmp_path):
    insert_prices(mem, [("X", dt.date(2025, 1, 2), 100.0, 100.0)])
    build(mem, run_date=RUN)
    before = rows(mem)
    insert_prices(mem, [("X", dt.date(2025, 1, 3), 101.0, 101.0)])
    # Same models plus one broken mart downstream: the whole build must roll back.
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    (sql / "marts" / "zz_broken.sql").write_text(
        "-- zz_broken\n-- Grain: none.\n-- Depends on: marts.technicals_daily\n-- Materialized: table\n"
        "select 1 / 0 as x, no_such_column from marts.technicals_daily\n"
    )
    with pytest.raises(ModelError, match="building marts.zz_broken"):
        build(mem, run_date=RUN, since=dt.date(2025, 1, 3), sql_dir=sql)
    assert rows(mem) == before
