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


def _pct_diff(a: pd.Series, b: pd.Series) -> pd.Series:
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
    con.execute("create schema if not exists pandas_peer")
    for name, frame in tables.items():
        con.register("peer_frame", frame)
        con.execute(f"create or replace table pandas_peer.{name} as select * from peer_frame")
        con.unregister("peer_frame")
    return tables


def compare(con: duckdb.DuckDBPyConnection, name: str, key: list[str], *, rtol: float = 1e-9) -> dict:
    """Compare marts.<name> with pandas_peer.<name> row for row: the number of rows, and per numeric
    column the cells that differ beyond `rtol` (or in being NULL). Raises if any differ."""
    sql_frame = con.execute(f"select * from marts.{name} order by {', '.join(key)}").df()
    peer_frame = con.execute(f"select * from pandas_peer.{name} order by {', '.join(key)}").df()
    if len(sql_frame) != len(peer_frame):
        raise AssertionError(f"{name}: SQL has {len(sql_frame):,} rows, pandas {len(peer_frame):,}")
    differing = {}
    for column in sql_frame.columns:
        a, b = sql_frame[column], peer_frame[column]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            a, b = a.astype("float64").to_numpy(), b.astype("float64").to_numpy()
            same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=rtol, atol=1e-12)
        else:
            same = (a.isna() & b.isna()) | (a.astype(object) == b.astype(object))
        if not bool(np.all(same)):
            differing[column] = int((~np.asarray(same)).sum())
    if differing:
        raise AssertionError(f"{name}: pandas and SQL differ in {differing}")
    return {"rows": len(sql_frame), "columns": len(sql_frame.columns)}
