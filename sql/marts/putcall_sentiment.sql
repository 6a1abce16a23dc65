-- putcall_sentiment
-- Grain: one row per trade_date per scope (total, equity, index, ...).
-- Depends on: staging.stg_putcall_daily
-- Materialized: incremental by trade_date
-- Lookback: 504 sessions
--
-- Windows count the scope's own observations (its rows), not calendar sessions: a day the
-- feed missed is skipped, not filled. A window with fewer observations than its length gives
-- NULL. A ratio <= 0 is a broken feed row (no market trades zero puts), so it is left out.
-- A date whose equity ratio is <= 0 is a day equity options did not trade (the real feed has
-- 9 January 2025, the Carter day of mourning: equity 0.00, and index and total ratios of 1.73 on
-- index options alone); every scope's row that day is left out, so a closed market does
-- not enter the windows as the most fearful day of the year.
-- pct_rank_N: the share, 0-100, of the trailing N observations (today included) that are
-- <= today's ratio; 100 means the most puts per call in N sessions. See trailing_pct_rank.
-- regime reads pct_rank_252 through putcall_regime (thresholds in sql/macros.sql).

with feed as (
    select
        trade_date,
        scope,
        ratio
    from staging.stg_putcall_daily
    where trade_date >= $input_start_date
),

equity_start as (
    select min(trade_date) as first_equity_date
    from staging.stg_putcall_daily
    where scope = 'equity' and ratio > 0
),

-- A broken feed day: its equity reading is not a reading (ratio <= 0), or is missing while
-- other scopes report, once the equity series has begun. The real CBOE file has such a day on
-- 2025-01-09 (the market was closed): equity 0.00 (refused at land) beside total 1.73.
closed_days as (
    select feed.trade_date
    from feed
    cross join equity_start
    group by feed.trade_date, equity_start.first_equity_date
    having
        bool_or(feed.scope = 'equity' and feed.ratio <= 0)
        or (
            not bool_or(feed.scope = 'equity' and feed.ratio > 0)
            and feed.trade_date >= equity_start.first_equity_date
        )
),

putcall as (
    select
        trade_date,
        scope,
        ratio
    from feed
    where
        ratio > 0
        and trade_date not in (select closed_days.trade_date from closed_days)
),

windows as (
    select
        trade_date,
        scope,
        ratio,
        avg(ratio) over (by_scope rows between 4 preceding and current row) as avg_5,
        count(ratio) over (by_scope rows between 4 preceding and current row) as n_5,
        avg(ratio) over (by_scope rows between 9 preceding and current row) as avg_10,
        count(ratio) over (by_scope rows between 9 preceding and current row) as n_10,
        avg(ratio) over (by_scope rows between 20 preceding and current row) as avg_21,
        count(ratio) over (by_scope rows between 20 preceding and current row) as n_21,
        avg(ratio) over trailing_252 as avg_252,
        stddev_samp(ratio) over trailing_252 as stdev_252,
        count(ratio) over trailing_252 as n_252,
        cume_dist(order by ratio) over trailing_252 as cume_dist_252,
        count(ratio) over trailing_504 as n_504,
        cume_dist(order by ratio) over trailing_504 as cume_dist_504
    from putcall
    window
        by_scope as (partition by scope order by trade_date),
        trailing_252 as (by_scope rows between 251 preceding and current row),
        trailing_504 as (by_scope rows between 503 preceding and current row)
),

ranked as (
    select
        trade_date,
        scope,
        ratio,
        case when n_5 = 5 then avg_5 end as ratio_ma_5,
        case when n_10 = 10 then avg_10 end as ratio_ma_10,
        case when n_21 = 21 then avg_21 end as ratio_ma_21,
        trailing_pct_rank(cume_dist_252, n_252, 252) as pct_rank_252,
        trailing_pct_rank(cume_dist_504, n_504, 504) as pct_rank_504,
        case
            when n_252 = 252 and stdev_252 > 0 then (ratio - avg_252) / stdev_252
        end as zscore_252
    from windows
),

final as (
    select
        trade_date,
        scope,
        ratio,
        ratio_ma_5,
        ratio_ma_10,
        ratio_ma_21,
        pct_rank_252,
        pct_rank_504,
        zscore_252,
        putcall_regime(pct_rank_252) as regime
    from ranked
    where trade_date >= $start_date
)

select * from final
