-- technicals_daily
-- Grain: one row per ticker per trade_date.
-- Depends on: staging.stg_prices_daily
-- Materialized: incremental by trade_date
-- Lookback: 200 sessions
--
-- Moving averages are over `close` (as traded, split-adjusted: the level chart readers see);
-- returns are over `adj_close` (so a dividend is not a loss). A window with fewer rows of
-- history than its length gives NULL, never a shorter average.
-- pct_to_sma_N = 100 * (sma_N / close - 1): -2.0 means the average sits 2% below the close.

with prices as (
    select
        ticker,
        trade_date,
        close,
        adj_close
    from staging.stg_prices_daily
    where trade_date >= $input_start_date
),

windows as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        lag(adj_close) over by_ticker as prev_adj_close,
        avg(close) over (by_ticker rows between 49 preceding and current row) as avg_50,
        count(close) over (by_ticker rows between 49 preceding and current row) as n_50,
        avg(close) over (by_ticker rows between 99 preceding and current row) as avg_100,
        count(close) over (by_ticker rows between 99 preceding and current row) as n_100,
        avg(close) over (by_ticker rows between 199 preceding and current row) as avg_200,
        count(close) over (by_ticker rows between 199 preceding and current row) as n_200
    from prices
    window by_ticker as (partition by ticker order by trade_date)
),

moving_averages as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        prev_adj_close,
        case when n_50 = 50 then avg_50 end as sma_50,
        case when n_100 = 100 then avg_100 end as sma_100,
        case when n_200 = 200 then avg_200 end as sma_200
    from windows
),

final as (
    select
        ticker,
        trade_date,
        close,
        pct_diff(adj_close, prev_adj_close) as return_1d_pct,
        sma_50,
        sma_100,
        sma_200,
        pct_diff(sma_50, close) as pct_to_sma_50,
        pct_diff(sma_100, close) as pct_to_sma_100,
        pct_diff(sma_200, close) as pct_to_sma_200
    from moving_averages
    where trade_date >= $start_date
)

select * from final
