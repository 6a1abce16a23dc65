"""The pandas peer: `marts.technicals_daily` and `marts.putcall_sentiment` written the way most
hand-rolled pipelines write them (read the table into pandas, groupby + rolling, write the
result back), to the same definitions as the SQL (see the headers of those two SQL files).

The benchmark checks that both give the same numbers before it compares their times.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

# sql/macros.sql: putcall_complacent_max_pct_rank(), putcall_fearful_min_pct_rank()
COMPLACENT_MAX, FEARFUL_MIN = 20, 80
SMA_WINDOWS = (20, 50, 100, 125, 200)


def _pct_diff(a, b):
    """a's change from b in percent: pandas Series or Polars expressions alike."""
    return 100 * (a / b - 1)


def technicals(prices: pd.DataFrame) -> pd.DataFrame:
    """technicals_daily from stg_prices_daily's ticker, trade_date, close, adj_close, volume."""
    f = prices.sort_values(["ticker", "trade_date"], ignore_index=True)
    by = f.groupby("ticker", sort=False)

    def rolling(column: pd.Series | str, n: int, how: str) -> pd.Series:
        grouped = by[column] if isinstance(column, str) else column.groupby(f["ticker"], sort=False)
        r = getattr(grouped.rolling(n, min_periods=n), how)()
        return r.reset_index(level=0, drop=True).sort_index()

    adj = f["adj_close"]
    ago = {n: by["adj_close"].shift(n) for n in (1, 5, 21)}
    log_return = pd.Series(np.where((adj > 0) & (ago[1] > 0), np.log(adj / ago[1]), np.nan), index=f.index)
    out = f[["ticker", "trade_date", "close", "adj_close", "volume"]].copy()
    for n in (1, 5, 21):
        out[f"return_{n}d_pct"] = _pct_diff(adj, ago[n])
    for n in SMA_WINDOWS:
        out[f"sma_{n}"] = rolling("close", n, "mean")
    for n in SMA_WINDOWS:
        out[f"pct_to_sma_{n}"] = _pct_diff(out[f"sma_{n}"], f["close"])
    out["high_52w"] = rolling("close", 252, "max")
    out["low_52w"] = rolling("close", 252, "min")
    out["is_52w_high"] = (f["close"] == out["high_52w"]).where(out["high_52w"].notna())
    out["is_52w_low"] = (f["close"] == out["low_52w"]).where(out["low_52w"].notna())
    out["drawdown_from_52w_high_pct"] = _pct_diff(f["close"], out["high_52w"])
    out["realized_vol_21d_pct"] = rolling(log_return, 21, "std") * np.sqrt(252) * 100
    volume = f["volume"].astype("float64")
    out["volume_avg_50"] = rolling(volume, 50, "mean")
    out["volume_ratio_50"] = volume / out["volume_avg_50"].replace(0, np.nan)
    return out


def putcall(feed: pd.DataFrame) -> pd.DataFrame:
    """putcall_sentiment from stg_putcall_daily's trade_date, scope, ratio."""
    f = feed[["trade_date", "scope", "ratio"]]
    equity = f[f["scope"] == "equity"]
    good_equity = equity[equity["ratio"] > 0]
    first_equity = good_equity["trade_date"].min()
    days = f.groupby("trade_date")["trade_date"].first()
    bad_days = set(equity.loc[equity["ratio"] <= 0, "trade_date"])
    if pd.notna(first_equity):
        bad_days |= set(days[(days >= first_equity) & ~days.isin(set(good_equity["trade_date"]))])
    f = f[(f["ratio"] > 0) & ~f["trade_date"].isin(bad_days)].sort_values(["scope", "trade_date"], ignore_index=True)
    by = f.groupby("scope", sort=False)["ratio"]

    def rolling(n: int):
        return by.rolling(n, min_periods=n)

    def flat(r: pd.Series) -> pd.Series:
        return r.reset_index(level=0, drop=True).sort_index()

    def rank(window: np.ndarray) -> float:
        return 100.0 * np.count_nonzero(window <= window[-1]) / len(window)

    out = f.copy()
    for n in (5, 10, 21):
        out[f"ratio_ma_{n}"] = flat(rolling(n).mean())
    out["pct_rank_252"] = flat(rolling(252).apply(rank, raw=True))
    out["pct_rank_504"] = flat(rolling(504).apply(rank, raw=True))
    mean, sd = flat(rolling(252).mean()), flat(rolling(252).std())
    out["zscore_252"] = ((f["ratio"] - mean) / sd).where(sd > 0)
    rank252 = out["pct_rank_252"]
    out["regime"] = np.select(
        [rank252 <= COMPLACENT_MAX, rank252 >= FEARFUL_MIN, rank252.notna()], ["complacent", "fearful", "neutral"], None
    )
    return out


def build(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Read the staging views, compute both tables in pandas and write them to the `pandas_peer` schema."""
    prices = con.execute("select ticker, trade_date, close, adj_close, volume from staging.stg_prices_daily").df()
    feed = con.execute("select trade_date, scope, ratio from staging.stg_putcall_daily").df()
    tables = {"technicals_daily": technicals(prices), "putcall_sentiment": putcall(feed)}
    write_tables(con, "pandas_peer", tables)
    return tables


def write_tables(con: duckdb.DuckDBPyConnection, schema: str, tables: dict) -> None:
    """Write a peer's tables (pandas frames or Arrow tables) to `schema`, as the SQL's are written."""
    con.execute(f"create schema if not exists {schema}")
    for name, frame in tables.items():
        con.register("peer_frame", frame)
        try:
            con.execute(f"create or replace table {schema}.{name} as select * from peer_frame")
        finally:
            con.unregister("peer_frame")


def compare(con: duckdb.DuckDBPyConnection, name: str, key: list[str], *, rtol: float = 1e-9, peer: str = "pandas_peer") -> dict:
    """Compare marts.<name> with <peer>.<name> (pandas_peer, polars_peer) row for row, in DuckDB (neither table is
    read into pandas: at 2.5 million rows that held two more copies of the table): the keys,
    and per column the cells that differ, numbers beyond `rtol` as numpy.isclose counts them
    (NULL and NaN alike: pandas writes a missing value as NaN). Raises if any differ."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_catalog = current_database() "
        "and table_schema = 'marts' and table_name = ? order by ordinal_position", [name],
    ).fetchall()
    numeric = {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "HUGEINT", "UBIGINT", "UINTEGER"}

    def differs(column: str, kind: str) -> str:
        if kind in numeric or kind.startswith("DECIMAL"):
            a, b = f"cast(s.{column} as double)", f"cast(p.{column} as double)"
            missing = lambda v: f"({v} is null or isnan({v}))"  # noqa: E731
            return (f"not (({missing(a)} and {missing(b)}) or abs({a} - {b}) <= 1e-12 + {rtol} * abs({b}))")
        return f"s.{column} is distinct from p.{column}"

    on = " and ".join(f"s.{k} = p.{k}" for k in key)
    counts = ", ".join(f"count(*) filter (where {differs(c, t)}) as {c}" for c, t in columns if c not in key)
    row = con.execute(
        f"select count(*) filter (where s.{key[0]} is null or p.{key[0]} is null) as unmatched, count(*) as rows, {counts} "
        f"from marts.{name} as s full outer join {peer}.{name} as p on {on}"
    ).fetchone()
    unmatched, rows, *cells = row
    if unmatched:
        raise AssertionError(f"{name}: {unmatched:,} rows are in one table and not the other")
    differing = {c: n for (c, _), n in zip([ct for ct in columns if ct[0] not in key], cells) if n}
    if differing:
        raise AssertionError(f"{name}: {peer} and SQL differ in {differing}")
    return {"rows": rows, "columns": len(columns)}
