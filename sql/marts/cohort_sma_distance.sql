-- cohort_sma_distance
-- Grain: one row per trade_date per cohort ('top_n', 'ai', 'non_ai'), for every technicals_daily session.
-- Depends on: marts.technicals_daily, marts.market_caps_daily, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- How far a cohort's stocks sit from their moving averages ("the mean distance of the 10
-- largest to their 50-DMA is -5.65%"), in technicals_daily's convention: pct_to_sma_N =
-- 100 * (sma_N / close - 1), so -5.65 means the average is 5.65% below the close and a
-- positive value means the stock closed below it.
-- Members: role 'stock' tickers with a non-NULL pct_to_sma_50 that day (50 sessions of
-- history), not in cohort_excluded_tickers(). 'top_n': the cohort_top_n() largest of them by
-- that day's market cap (a stock without a known market cap cannot be one); 'ai' / 'non_ai':
-- every member with that stg_universe.cohort. members lists tickers largest first (those
-- without a market cap last, by name). The sma_100 / sma_200 statistics are over the members
-- that have one. median is the midpoint of the two middle values for an even count. A cohort
-- with no members has n_members 0, an empty list and NULL statistics. n_stocks: the stocks the
-- cohort is drawn from that day (every eligible stock for 'top_n'), n_stocks_with_market_cap
-- those of them with a market cap, so a brief can say "not the 10 largest names: only 1 of the
-- 16 stocks has a market cap". Each row reads only its own day, so no look-back is needed.

with technicals as (
    select
        ticker,
        trade_date,
        pct_to_sma_50,
        pct_to_sma_100,
        pct_to_sma_200
    from marts.technicals_daily
    where trade_date >= $input_start_date
),

market_caps as (
    select
        ticker,
        trade_date,
        market_cap
    from marts.market_caps_daily
    where trade_date >= $input_start_date
),

universe as (
    select
        ticker,
        role,
        cohort
    from staging.stg_universe
),

sessions as (
    select distinct trade_date
    from technicals
),

cohorts as (
    select unnest(['top_n', 'ai', 'non_ai']) as cohort
),

eligible as (
    select
        technicals.trade_date,
        technicals.ticker,
        universe.cohort,
        market_caps.market_cap,
        technicals.pct_to_sma_50,
        technicals.pct_to_sma_100,
        technicals.pct_to_sma_200
    from technicals
    inner join universe
        on
            technicals.ticker = universe.ticker
            and universe.role = 'stock'
    left join market_caps
        on
            technicals.ticker = market_caps.ticker
            and technicals.trade_date = market_caps.trade_date
    where
        technicals.pct_to_sma_50 is not null
        and not list_contains(cohort_excluded_tickers(), technicals.ticker)
),

size_ranked as (
    select
        trade_date,
        ticker,
        cohort,
        market_cap,
        pct_to_sma_50,
        pct_to_sma_100,
        pct_to_sma_200,
        row_number() over (
            partition by trade_date
            order by market_cap desc nulls last, ticker asc
        ) as size_rank
    from eligible
),

members as (
    select
        trade_date,
        'top_n' as cohort,
        ticker,
        size_rank,
        pct_to_sma_50,
        pct_to_sma_100,
        pct_to_sma_200
    from size_ranked
    where
        market_cap is not null
        and size_rank <= cohort_top_n()
    union all
    select
        trade_date,
        cohort,
        ticker,
        size_rank,
        pct_to_sma_50,
        pct_to_sma_100,
        pct_to_sma_200
    from size_ranked
    where cohort in ('ai', 'non_ai')
),

pools as (
    select
        eligible.trade_date,
        cohorts.cohort,
        count(*) as n_stocks,
        count(eligible.market_cap) as n_stocks_with_market_cap
    from eligible
    inner join cohorts
        on
            cohorts.cohort = 'top_n'
            or eligible.cohort = cohorts.cohort
    group by eligible.trade_date, cohorts.cohort
),

cohort_stats as (
    select
        trade_date,
        cohort,
        list(ticker order by size_rank) as members,
        count(*) as n_members,
        avg(pct_to_sma_50) as mean_pct_to_sma_50,
        median(pct_to_sma_50) as median_pct_to_sma_50,
        avg(pct_to_sma_100) as mean_pct_to_sma_100,
        median(pct_to_sma_100) as median_pct_to_sma_100,
        avg(pct_to_sma_200) as mean_pct_to_sma_200,
        median(pct_to_sma_200) as median_pct_to_sma_200,
        count(*) filter (where pct_to_sma_50 > 0) as n_below_sma_50
    from members
    group by trade_date, cohort
),

final as (
    select
        sessions.trade_date,
        cohorts.cohort,
        coalesce(cohort_stats.members, []::varchar[]) as members,
        coalesce(cohort_stats.n_members, 0) as n_members,
        cohort_stats.mean_pct_to_sma_50,
        cohort_stats.median_pct_to_sma_50,
        coalesce(cohort_stats.n_below_sma_50, 0) as n_below_sma_50,
        cohort_stats.mean_pct_to_sma_100,
        cohort_stats.median_pct_to_sma_100,
        cohort_stats.mean_pct_to_sma_200,
        cohort_stats.median_pct_to_sma_200,
        coalesce(pools.n_stocks, 0) as n_stocks,
        coalesce(pools.n_stocks_with_market_cap, 0) as n_stocks_with_market_cap
    from sessions
    cross join cohorts
    left join cohort_stats
        on
            sessions.trade_date = cohort_stats.trade_date
            and cohorts.cohort = cohort_stats.cohort
    left join pools
        on
            sessions.trade_date = pools.trade_date
            and cohorts.cohort = pools.cohort
    where sessions.trade_date >= $start_date
)

select * from final
