-- valuation_cohort_multiples
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for cohorts with members that day.
-- Depends on: marts.valuation_multiples, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- Each cohort's valuation per day, unranked: valuation_cohorts ranks these figures against the
-- cohort's history, counting each new day against the rows already here instead of working
-- every earlier day's cohort figures out again. A day's figures need only that day's stocks.
-- Members: the universe's stocks (role 'stock') of the cohort with a row in valuation_multiples
-- (a known market cap) that day; 'all' is every stock, including those with no cohort.
-- Membership follows today's universe file back through history.
-- aggregate_*: sum(market_cap) / sum(market_cap / multiple) over the members that have the
-- multiple (aggregate_multiple): total value over total earnings (or sales), so a loss-maker
-- or a stock without the figure is left out of both sums. median_*: the plain median over the
-- same members; n_* counts them. ai_to_non_ai_price_to_sales (the same on each of the day's
-- rows): median P/S of 'ai' / median P/S of 'non_ai'.

with valuations as (
    select
        ticker,
        trade_date,
        market_cap,
        trailing_pe,
        forward_pe,
        price_to_sales_ttm
    from marts.valuation_multiples
    where trade_date >= $input_start_date
),

stocks as (
    select
        ticker,
        cohort
    from staging.stg_universe
    where role = 'stock'
),

memberships as (
    select
        ticker,
        cohort
    from stocks
    where cohort in ('ai', 'non_ai')
    union all
    select
        ticker,
        'all' as cohort
    from stocks
),

cohort_days as (
    select
        valuations.ticker,
        valuations.trade_date,
        valuations.market_cap,
        valuations.trailing_pe,
        valuations.forward_pe,
        valuations.price_to_sales_ttm,
        memberships.cohort
    from valuations
    inner join memberships
        on valuations.ticker = memberships.ticker
),

cohort_figures as (
    select
        trade_date,
        cohort,
        count(*) as n_members,
        -- Largest first, ties by ticker: sorting {-market_cap, ticker} pairs is cheaper than
        -- an ordered aggregate (market_cap is never NULL here).
        list_transform(
            list_sort(list({ minus_cap: -market_cap, ticker: ticker })),
            lambda m: struct_extract(m, 'ticker')
        ) as members,
        sum(market_cap) as market_cap,
        count(forward_pe) as n_forward_pe,
        aggregate_multiple(market_cap, forward_pe) as aggregate_forward_pe,
        median(forward_pe) as median_forward_pe,
        count(trailing_pe) as n_trailing_pe,
        aggregate_multiple(market_cap, trailing_pe) as aggregate_trailing_pe,
        median(trailing_pe) as median_trailing_pe,
        count(price_to_sales_ttm) as n_price_to_sales,
        aggregate_multiple(market_cap, price_to_sales_ttm) as aggregate_price_to_sales,
        median(price_to_sales_ttm) as median_price_to_sales
    from cohort_days
    group by trade_date, cohort
),

final as (
    select
        trade_date,
        cohort,
        n_members,
        members,
        market_cap,
        n_forward_pe,
        aggregate_forward_pe,
        median_forward_pe,
        n_trailing_pe,
        aggregate_trailing_pe,
        median_trailing_pe,
        n_price_to_sales,
        aggregate_price_to_sales,
        median_price_to_sales,
        max(median_price_to_sales) filter (where cohort = 'ai') over by_day
        / max(median_price_to_sales) filter (where cohort = 'non_ai') over by_day
            as ai_to_non_ai_price_to_sales
    from cohort_figures
    where trade_date >= $start_date
    window by_day as (partition by trade_date)
)

select * from final
