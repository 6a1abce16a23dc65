-- technicals_daily
-- Grain: one row per ticker per trade_date.
-- Depends on: staging.stg_prices_daily
-- Materialized: incremental by trade_date
-- Lookback: 252 sessions
--
-- Moving averages, the 52-week range and their distances are over `close` (as traded,
-- split-adjusted: the level chart readers see); returns and realised volatility are over
-- `adj_close` (so a dividend is not a loss). Windows count the ticker's own rows (sessions it
-- traded). A window with fewer rows of history than its length gives NULL, never a shorter
-- average: return_Nd_pct needs N earlier rows, sma_N N rows, high_52w / low_52w 252 rows,
-- realized_vol_21d_pct 21 daily returns (22 rows), volume_avg_50 50 rows with a volume.
-- pct_to_sma_N = 100 * (sma_N / close - 1): -2.0 means the average sits 2% below the close.
-- drawdown_from_52w_high_pct = 100 * (close / high_52w - 1): 0 at a new high, else negative.
-- realized_vol_21d_pct: sample standard deviation of the last 21 daily log returns,
-- annualised with sqrt(252), in percent (32.0 means 32% a year).

with prices as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        volume
    from staging.stg_prices_daily
    where trade_date >= $input_start_date
),

-- Two window passes (each sorts the rows by ticker and date once): the first takes the lags
-- of adj_close and the framed windows over close and volume; the second the framed windows
-- over the daily log return the first made, and the lags of its 25-session sums.
windows as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        volume,
        lag(adj_close, 1) over by_ticker as adj_close_1d_ago,
        lag(adj_close, 5) over by_ticker as adj_close_5d_ago,
        lag(adj_close, 21) over by_ticker as adj_close_21d_ago,
        -- A non-positive price is a broken row; ln() would fail the whole build on it.
        case
            when adj_close > 0 and lag(adj_close, 1) over by_ticker > 0
                then ln(adj_close / lag(adj_close, 1) over by_ticker)
        end as log_return_1d,
        -- close is NOT NULL (raw.prices_daily), so a window of N rows holds N closes exactly
        -- when the ticker has N rows so far: one row number instead of six framed counts.
        row_number() over by_ticker as n_rows,
        sum(close) over (by_ticker rows between 19 preceding and current row) as sum_20,
        sum(close) over (by_ticker rows between 24 preceding and current row) as sum_25,
        max(close) over (by_ticker rows between 251 preceding and current row) as max_252,
        min(close) over (by_ticker rows between 251 preceding and current row) as min_252,
        -- A missing volume enters the average as NaN, so a window holding one averages to NaN
        -- (made NULL below): the 50 volumes are all there without a second framed count.
        -- Volumes are whole numbers: summed as doubles they stay exact (below 2^53 shares),
        -- so the average is the integer average's, bit for bit.
        avg(coalesce(cast(volume as double), cast('nan' as double)))
            over (by_ticker rows between 49 preceding and current row) as avg_volume_50
    from prices
    window by_ticker as (partition by ticker order by trade_date)
),

-- The 50-, 100-, 125- and 200-session sums are 25-session sums end to end (one framed window
-- instead of four; each term is a short window's sum, so no precision is lost as it would be
-- subtracting running totals): the second pass takes each earlier 25-session sum once.
lagged as (
    select
        *,
        -- A missing return (a ticker's first row, a non-positive price) enters as 1e100 times
        -- its row number: a window holding one or more (each different) has a deviation above
        -- 1e50 (made NULL below), where real returns give one below 10, so a whole window is
        -- known without a second framed count. NaN would say it more plainly, but stddev_samp
        -- refuses a non-finite result. A window without one is computed as before, bit for bit:
        -- its segments hold only its own rows.
        stddev_samp(coalesce(log_return_1d, 1e100 * n_rows))
            over (by_ticker rows between 20 preceding and current row) as stddev_21,
        lag(sum_25, 25) over by_ticker as sum_25_25_back,
        lag(sum_25, 50) over by_ticker as sum_25_50_back,
        lag(sum_25, 75) over by_ticker as sum_25_75_back,
        lag(sum_25, 100) over by_ticker as sum_25_100_back,
        lag(sum_25, 125) over by_ticker as sum_25_125_back,
        lag(sum_25, 150) over by_ticker as sum_25_150_back,
        lag(sum_25, 175) over by_ticker as sum_25_175_back
    from windows
    window by_ticker as (partition by ticker order by trade_date)
),

-- Each longer sum is the one before it plus the next blocks (added in this order, the sums are
-- the same to the last bit as they were when each was written out in full).
block_sums as (
    select
        *,
        sum_25 + sum_25_25_back as sum_50,
        sum_50 + sum_25_50_back + sum_25_75_back as sum_100,
        sum_100 + sum_25_100_back as sum_125,
        sum_125 + (sum_25_125_back + sum_25_150_back + sum_25_175_back) as sum_200
    from lagged
),

full_windows as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        volume,
        adj_close_1d_ago,
        adj_close_5d_ago,
        adj_close_21d_ago,
        case when n_rows >= 20 then sum_20 / 20 end as sma_20,
        case when n_rows >= 50 then sum_50 / 50 end as sma_50,
        case when n_rows >= 100 then sum_100 / 100 end as sma_100,
        case when n_rows >= 125 then sum_125 / 125 end as sma_125,
        case when n_rows >= 200 then sum_200 / 200 end as sma_200,
        case when n_rows >= 252 then max_252 end as high_52w,
        case when n_rows >= 252 then min_252 end as low_52w,
        case
            when n_rows >= 22 and stddev_21 < 1e50 then stddev_21 * sqrt(252) * 100
        end as realized_vol_21d_pct,
        case when n_rows >= 50 and not isnan(avg_volume_50) then avg_volume_50 end as volume_avg_50
    from block_sums
),

final as (
    select
        ticker,
        trade_date,
        close,
        adj_close,
        volume,
        pct_diff(adj_close, adj_close_1d_ago) as return_1d_pct,
        pct_diff(adj_close, adj_close_5d_ago) as return_5d_pct,
        pct_diff(adj_close, adj_close_21d_ago) as return_21d_pct,
        sma_20,
        sma_50,
        sma_100,
        sma_125,
        sma_200,
        pct_diff(sma_20, close) as pct_to_sma_20,
        pct_diff(sma_50, close) as pct_to_sma_50,
        pct_diff(sma_100, close) as pct_to_sma_100,
        pct_diff(sma_125, close) as pct_to_sma_125,
        pct_diff(sma_200, close) as pct_to_sma_200,
        high_52w,
        low_52w,
        close = high_52w as is_52w_high,
        close = low_52w as is_52w_low,
        pct_diff(close, high_52w) as drawdown_from_52w_high_pct,
        realized_vol_21d_pct,
        volume_avg_50,
        volume / nullif(volume_avg_50, 0) as volume_ratio_50
    from full_windows
    where trade_date >= $start_date
)

select * from final
