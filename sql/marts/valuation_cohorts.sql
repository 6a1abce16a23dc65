-- valuation_cohorts
-- Grain: one row per trade_date per cohort ('ai', 'non_ai', 'all'), for cohorts with members that day.
-- Depends on: marts.valuation_cohort_multiples
-- Materialized: incremental by trade_date
-- Lookback: all
--
-- valuation_cohort_multiples' rows with each figure's percentile rank against the cohort's
-- whole history (expanding_pct_rank). Incremental, reading every earlier day, as
-- valuation_daily: the ranks are worked out only for the days written ($start_date on), each
-- figure's earlier values (valuation_cohort_multiples' stored rows) coming in as two counts
-- (earlier_counts). Members, counts and figures: see valuation_cohort_multiples.
-- *_pct_rank: the share, 0-100, of the cohort's values so far (today included) that are <=
-- today's; NULL before valuation_pct_rank_min_obs() of them.

-- The days this build writes (every day in a full build).
with new_days as (
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
        ai_to_non_ai_price_to_sales
    from marts.valuation_cohort_multiples
    where trade_date >= $start_date
),

-- The ranked figures before the days written (none in a full build).
earlier as (
    select
        cohort,
        aggregate_forward_pe,
        median_forward_pe,
        aggregate_trailing_pe,
        aggregate_price_to_sales,
        median_price_to_sales,
        ai_to_non_ai_price_to_sales
    from marts.valuation_cohort_multiples
    where trade_date < $start_date
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
    inner join earlier
        on new_days.cohort = earlier.cohort
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
