-- valuation_cohorts
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for cohorts with members that day.
-- Depends on: marts.valuation_daily, staging.stg_universe
-- Materialized: table
--
-- A table, not incremental: the *_pct_rank columns are against the cohort's whole history
-- (expanding_pct_rank), as in valuation_daily, which is itself rebuilt whole.
-- Members: the universe's stocks (role 'stock') of the cohort with a row in valuation_daily
-- (a known market cap) that day; 'all' is every stock, including those with no cohort.
-- Membership follows today's universe file back through history.
-- aggregate_*: sum(market_cap) / sum(market_cap / multiple) over the members that have the
-- multiple (aggregate_multiple): total value over total earnings (or sales), so a loss-maker
-- or a stock without the figure is left out of both sums. median_*: the plain median over the
-- same members; n_* counts them. ai_to_non_ai_price_to_sales (the same on each of the day's
-- rows): median P/S of 'ai' / median P/S of 'non_ai'.
-- *_pct_rank: the share, 0-100, of the cohort's values so far (today included) that are <=
-- today's; NULL before valuation_pct_rank_min_obs() of them.

with valuations as (
    select
        ticker,
        trade_date,
        market_cap,
        trailing_pe,
        forward_pe,
        price_to_sales_ttm
    from marts.valuation_daily
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

cohort_figures as (
    select
        valuations.trade_date,
        memberships.cohort,
        count(*) as n_members,
        list(valuations.ticker order by valuations.market_cap desc) as members,
        sum(valuations.market_cap) as market_cap,
        count(valuations.forward_pe) as n_forward_pe,
        aggregate_multiple(valuations.market_cap, valuations.forward_pe) as aggregate_forward_pe,
        median(valuations.forward_pe) as median_forward_pe,
        count(valuations.trailing_pe) as n_trailing_pe,
        aggregate_multiple(valuations.market_cap, valuations.trailing_pe) as aggregate_trailing_pe,
        median(valuations.trailing_pe) as median_trailing_pe,
        count(valuations.price_to_sales_ttm) as n_price_to_sales,
        aggregate_multiple(valuations.market_cap, valuations.price_to_sales_ttm) as aggregate_price_to_sales,
        median(valuations.price_to_sales_ttm) as median_price_to_sales
    from valuations
    inner join memberships
        on valuations.ticker = memberships.ticker
    group by valuations.trade_date, memberships.cohort
),

with_ratio as (
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
    window by_day as (partition by trade_date)
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
        ai_to_non_ai_price_to_sales,
        expanding_pct_rank(aggregate_forward_pe, cohort, trade_date) as aggregate_forward_pe_pct_rank,
        expanding_pct_rank(median_forward_pe, cohort, trade_date) as median_forward_pe_pct_rank,
        expanding_pct_rank(aggregate_trailing_pe, cohort, trade_date) as aggregate_trailing_pe_pct_rank,
        expanding_pct_rank(aggregate_price_to_sales, cohort, trade_date) as aggregate_price_to_sales_pct_rank,
        expanding_pct_rank(median_price_to_sales, cohort, trade_date) as median_price_to_sales_pct_rank,
        expanding_pct_rank(ai_to_non_ai_price_to_sales, cohort, trade_date)
            as ai_to_non_ai_price_to_sales_pct_rank
    from with_ratio
)

select * from final
