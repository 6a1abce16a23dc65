-- valuation_cohorts
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for cohorts with members that day.
-- Depends on: marts.valuation_daily, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: all
--
-- Incremental, reading every earlier day, as valuation_daily: the *_pct_rank columns are against
-- the cohort's whole history (expanding_pct_rank). The ranked figures (cohort_multiples) are
-- worked out for every day; the members, counts and ranks only for the days written
-- ($start_date on), with each figure's earlier values as two counts (earlier_counts).
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

-- The figures the ranks are over, every day.
cohort_multiples as (
    select
        trade_date,
        cohort,
        aggregate_multiple(market_cap, forward_pe) as aggregate_forward_pe,
        median(forward_pe) as median_forward_pe,
        aggregate_multiple(market_cap, trailing_pe) as aggregate_trailing_pe,
        aggregate_multiple(market_cap, price_to_sales_ttm) as aggregate_price_to_sales,
        median(price_to_sales_ttm) as median_price_to_sales
    from cohort_days
    group by trade_date, cohort
),

with_ratio as (
    select
        trade_date,
        cohort,
        aggregate_forward_pe,
        median_forward_pe,
        aggregate_trailing_pe,
        aggregate_price_to_sales,
        median_price_to_sales,
        max(median_price_to_sales) filter (where cohort = 'ai') over by_day
        / max(median_price_to_sales) filter (where cohort = 'non_ai') over by_day
            as ai_to_non_ai_price_to_sales
    from cohort_multiples
    window by_day as (partition by trade_date)
),

-- The rest of a day's figures, for the days this build writes (every day in a full build).
cohort_members as (
    select
        trade_date,
        cohort,
        count(*) as n_members,
        list(ticker order by market_cap desc, ticker asc) as members,
        sum(market_cap) as market_cap,
        count(forward_pe) as n_forward_pe,
        count(trailing_pe) as n_trailing_pe,
        median(trailing_pe) as median_trailing_pe,
        count(price_to_sales_ttm) as n_price_to_sales
    from cohort_days
    where trade_date >= $start_date
    group by trade_date, cohort
),

new_days as (
    select
        cohort_members.trade_date,
        cohort_members.cohort,
        cohort_members.n_members,
        cohort_members.members,
        cohort_members.market_cap,
        cohort_members.n_forward_pe,
        with_ratio.aggregate_forward_pe,
        with_ratio.median_forward_pe,
        cohort_members.n_trailing_pe,
        with_ratio.aggregate_trailing_pe,
        cohort_members.median_trailing_pe,
        cohort_members.n_price_to_sales,
        with_ratio.aggregate_price_to_sales,
        with_ratio.median_price_to_sales,
        with_ratio.ai_to_non_ai_price_to_sales
    from cohort_members
    inner join with_ratio
        on
            cohort_members.trade_date = with_ratio.trade_date
            and cohort_members.cohort = with_ratio.cohort
),

-- Per day written: the cohort's figures before $start_date, how many and how many are <= the
-- day's, pair by pair (three series of a row a day: even years of days stay cheap). No rows in
-- a full build.
earlier_counts as (
    select
        new_days.trade_date,
        new_days.cohort,
        count(earlier.aggregate_forward_pe) as aggregate_forward_pe_n_before,
        count_at_or_below(
            earlier.aggregate_forward_pe, new_days.aggregate_forward_pe
        ) as aggregate_forward_pe_le_before,
        count(earlier.median_forward_pe) as median_forward_pe_n_before,
        count_at_or_below(
            earlier.median_forward_pe, new_days.median_forward_pe
        ) as median_forward_pe_le_before,
        count(earlier.aggregate_trailing_pe) as aggregate_trailing_pe_n_before,
        count_at_or_below(
            earlier.aggregate_trailing_pe, new_days.aggregate_trailing_pe
        ) as aggregate_trailing_pe_le_before,
        count(earlier.aggregate_price_to_sales) as aggregate_price_to_sales_n_before,
        count_at_or_below(
            earlier.aggregate_price_to_sales, new_days.aggregate_price_to_sales
        ) as aggregate_price_to_sales_le_before,
        count(earlier.median_price_to_sales) as median_price_to_sales_n_before,
        count_at_or_below(
            earlier.median_price_to_sales, new_days.median_price_to_sales
        ) as median_price_to_sales_le_before,
        count(earlier.ai_to_non_ai_price_to_sales) as ai_to_non_ai_n_before,
        count_at_or_below(
            earlier.ai_to_non_ai_price_to_sales, new_days.ai_to_non_ai_price_to_sales
        ) as ai_to_non_ai_le_before
    from new_days
    inner join with_ratio as earlier
        on
            new_days.cohort = earlier.cohort
            and earlier.trade_date < $start_date
    group by new_days.trade_date, new_days.cohort
),

with_earlier_counts as (
    select
        new_days.trade_date,
        new_days.cohort,
        new_days.n_members,
        new_days.members,
        new_days.market_cap,
        new_days.n_forward_pe,
        new_days.aggregate_forward_pe,
        new_days.median_forward_pe,
        new_days.n_trailing_pe,
        new_days.aggregate_trailing_pe,
        new_days.median_trailing_pe,
        new_days.n_price_to_sales,
        new_days.aggregate_price_to_sales,
        new_days.median_price_to_sales,
        new_days.ai_to_non_ai_price_to_sales,
        coalesce(earlier_counts.aggregate_forward_pe_n_before, 0) as aggregate_forward_pe_n_before,
        coalesce(earlier_counts.aggregate_forward_pe_le_before, 0) as aggregate_forward_pe_le_before,
        coalesce(earlier_counts.median_forward_pe_n_before, 0) as median_forward_pe_n_before,
        coalesce(earlier_counts.median_forward_pe_le_before, 0) as median_forward_pe_le_before,
        coalesce(earlier_counts.aggregate_trailing_pe_n_before, 0) as aggregate_trailing_pe_n_before,
        coalesce(earlier_counts.aggregate_trailing_pe_le_before, 0) as aggregate_trailing_pe_le_before,
        coalesce(earlier_counts.aggregate_price_to_sales_n_before, 0) as aggregate_price_to_sales_n_before,
        coalesce(earlier_counts.aggregate_price_to_sales_le_before, 0) as aggregate_price_to_sales_le_before,
        coalesce(earlier_counts.median_price_to_sales_n_before, 0) as median_price_to_sales_n_before,
        coalesce(earlier_counts.median_price_to_sales_le_before, 0) as median_price_to_sales_le_before,
        coalesce(earlier_counts.ai_to_non_ai_n_before, 0) as ai_to_non_ai_n_before,
        coalesce(earlier_counts.ai_to_non_ai_le_before, 0) as ai_to_non_ai_le_before
    from new_days
    left join earlier_counts
        on
            new_days.trade_date = earlier_counts.trade_date
            and new_days.cohort = earlier_counts.cohort
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
        expanding_pct_rank(
            aggregate_forward_pe, cohort, trade_date,
            aggregate_forward_pe_n_before, aggregate_forward_pe_le_before
        ) as aggregate_forward_pe_pct_rank,
        expanding_pct_rank(
            median_forward_pe, cohort, trade_date,
            median_forward_pe_n_before, median_forward_pe_le_before
        ) as median_forward_pe_pct_rank,
        expanding_pct_rank(
            aggregate_trailing_pe, cohort, trade_date,
            aggregate_trailing_pe_n_before, aggregate_trailing_pe_le_before
        ) as aggregate_trailing_pe_pct_rank,
        expanding_pct_rank(
            aggregate_price_to_sales, cohort, trade_date,
            aggregate_price_to_sales_n_before, aggregate_price_to_sales_le_before
        ) as aggregate_price_to_sales_pct_rank,
        expanding_pct_rank(
            median_price_to_sales, cohort, trade_date,
            median_price_to_sales_n_before, median_price_to_sales_le_before
        ) as median_price_to_sales_pct_rank,
        expanding_pct_rank(
            ai_to_non_ai_price_to_sales, cohort, trade_date,
            ai_to_non_ai_n_before, ai_to_non_ai_le_before
        ) as ai_to_non_ai_price_to_sales_pct_rank
    from with_earlier_counts
)

select * from final
