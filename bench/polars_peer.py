"""The Polars peer: `marts.technicals_daily` and `marts.putcall_sentiment` as a Polars user would
write them (read the staging view into Polars, rolling expressions over each ticker, write the
result back), to the same definitions as the SQL and the pandas peer (bench/peer.py).

Polars runs its expressions on every core, as DuckDB does, so it is the fairer rival of the
two: the benchmark checks its numbers equal the SQL's before it compares their times.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from bench.peer import COMPLACENT_MAX, FEARFUL_MIN, SMA_WINDOWS, _pct_diff, write_tables


def technicals(prices: pl.DataFrame) -> pl.DataFrame:
    """technicals_daily from stg_prices_daily's ticker, trade_date, close, adj_close, volume."""
    f = prices.sort(["ticker", "trade_date"])
    adj, close = pl.col("adj_close"), pl.col("close")
    ago = {n: adj.shift(n).over("ticker") for n in (1, 5, 21)}
    log_return = pl.when((adj > 0) & (ago[1] > 0)).then((adj / ago[1]).log()).otherwise(None)
    volume = pl.col("volume").cast(pl.Float64)
    first = f.with_columns(
        *[_pct_diff(adj, ago[n]).alias(f"return_{n}d_pct") for n in (1, 5, 21)],
        *[close.rolling_mean(n, min_samples=n).over("ticker").alias(f"sma_{n}") for n in SMA_WINDOWS],
        close.rolling_max(252, min_samples=252).over("ticker").alias("high_52w"),
        close.rolling_min(252, min_samples=252).over("ticker").alias("low_52w"),
        (log_return.rolling_std(21, min_samples=21, ddof=1).over("ticker") * np.sqrt(252) * 100).alias("realized_vol_21d_pct"),
        volume.rolling_mean(50, min_samples=50).over("ticker").alias("volume_avg_50"),
    )
    return first.select(
        "ticker", "trade_date", "close", "adj_close", "volume",
        *[f"return_{n}d_pct" for n in (1, 5, 21)],
        *[f"sma_{n}" for n in SMA_WINDOWS],
        *[_pct_diff(pl.col(f"sma_{n}"), close).alias(f"pct_to_sma_{n}") for n in SMA_WINDOWS],
        "high_52w", "low_52w",
        (close == pl.col("high_52w")).alias("is_52w_high"),
        (close == pl.col("low_52w")).alias("is_52w_low"),
        _pct_diff(close, pl.col("high_52w")).alias("drawdown_from_52w_high_pct"),
        "realized_vol_21d_pct", "volume_avg_50",
        (volume / pl.when(pl.col("volume_avg_50") != 0).then(pl.col("volume_avg_50"))).alias("volume_ratio_50"),
    )


def _trailing_rank(values: np.ndarray, n: int) -> np.ndarray:
    """100 * the share of the last n values (today's included) <= today's; NaN before n."""
    out = np.full(len(values), np.nan)
    if len(values) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(values, n)
        out[n - 1:] = 100.0 * (windows <= windows[:, -1:]).sum(axis=1) / n
    return out


def putcall(feed: pl.DataFrame) -> pl.DataFrame:
    """putcall_sentiment from stg_putcall_daily's trade_date, scope, ratio."""
    f = feed.select("trade_date", "scope", "ratio")
    equity = f.filter(pl.col("scope") == "equity")
    good_equity = equity.filter(pl.col("ratio") > 0)
    first_equity = good_equity["trade_date"].min()
    bad_days = set(equity.filter(pl.col("ratio") <= 0)["trade_date"].to_list())
    if first_equity is not None:
        days = f.select("trade_date").unique()
        missing = days.filter((pl.col("trade_date") >= first_equity)
                              & ~pl.col("trade_date").is_in(good_equity["trade_date"].implode()))
        bad_days |= set(missing["trade_date"].to_list())
    f = f.filter((pl.col("ratio") > 0) & ~pl.col("trade_date").is_in(list(bad_days))).sort(["scope", "trade_date"])
    ratio = pl.col("ratio")
    out = f.with_columns(
        *[ratio.rolling_mean(n, min_samples=n).over("scope").alias(f"ratio_ma_{n}") for n in (5, 10, 21)],
        ratio.rolling_mean(252, min_samples=252).over("scope").alias("mean_252"),
        ratio.rolling_std(252, min_samples=252, ddof=1).over("scope").alias("sd_252"),
    )
    ranks = {n: np.concatenate([_trailing_rank(part["ratio"].to_numpy(), n)
                                for part in out.partition_by("scope", maintain_order=True)]) for n in (252, 504)}
    out = out.with_columns(pl.Series("pct_rank_252", ranks[252]).fill_nan(None),
                           pl.Series("pct_rank_504", ranks[504]).fill_nan(None))
    rank = pl.col("pct_rank_252")
    return out.select(
        "trade_date", "scope", "ratio", "ratio_ma_5", "ratio_ma_10", "ratio_ma_21", "pct_rank_252", "pct_rank_504",
        pl.when(pl.col("sd_252") > 0).then((ratio - pl.col("mean_252")) / pl.col("sd_252")).alias("zscore_252"),
        pl.when(rank <= COMPLACENT_MAX).then(pl.lit("complacent"))
        .when(rank >= FEARFUL_MIN).then(pl.lit("fearful"))
        .when(rank.is_not_null()).then(pl.lit("neutral")).alias("regime"),
    )


def build(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Read the staging views, compute both tables in Polars and write them to the `polars_peer` schema."""
    prices = con.execute("select ticker, trade_date, close, adj_close, volume from staging.stg_prices_daily").pl()
    feed = con.execute("select trade_date, scope, ratio from staging.stg_putcall_daily").pl()
    tables = {"technicals_daily": technicals(prices), "putcall_sentiment": putcall(feed)}
    write_tables(con, "polars_peer", {name: frame.to_arrow() for name, frame in tables.items()})
    return tables
