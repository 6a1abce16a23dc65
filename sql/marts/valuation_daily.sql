-- valuation_daily
-- Grain: one row per stock (universe role 'stock') per trade_date on which its market cap is known.
-- Depends on: marts.valuation_multiples
-- Materialized: incremental by trade_date
-- Lookback: all
--
-- valuation_multiples' rows with each multiple's percentile rank against the stock's whole
-- history up to the date (expanding_pct_rank). Incremental, reading every earlier day: the
-- ranks are worked out only for the days written ($start_date on); the stock's multiples
-- before $start_date come in as two counts per day (how many, how many <= the day's;
-- earlier_counts: pair by pair for a night, by one sort of the stock's values for a backfill),
-- read from valuation_multiples' stored history. A full build has no earlier days, so both
-- ways give the same ranks. Point in time as valuation_multiples.
-- *_pct_rank: the share, 0-100, of the stock's multiples so far (today included) that are <=
-- today's; NULL before valuation_pct_rank_min_obs() of them (see expanding_pct_rank).

-- The days this build writes (every day in a full build).
with new_days as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        trailing_eps,
        trailing_pe,
        forward_eps,
        forward_pe,
        revenue_ttm,
        price_to_sales_ttm,
        fundamentals_period_end,
        forward_eps_as_of
    from marts.valuation_multiples
    where trade_date >= $start_date
),

-- The stock's multiples before the days written: only what ranking needs, read where it is
-- used (not materialised as one wide table of every day).
earlier as not materialized (
    select
        ticker,
        trailing_pe,
        forward_pe,
        price_to_sales_ttm
    from marts.valuation_multiples
    where trade_date < $start_date
),

-- None in a full build, which ranks by its windows alone.
history as (
    select exists(
        select 1 as found
        from marts.valuation_multiples
        where trade_date < $start_date
    ) as has_earlier_days
),

-- How a written day's earlier values are counted depends on how many days its stock has to
-- rank. Up to valuation_rank_pairs_max_days() (a night): each is compared with every earlier
-- value of the stock (pairs: days x history). More (a backfill of years, where pairs would run
-- to billions): the stock's values are sorted once. Both give the same counts; a full build has
-- no earlier values and does neither.
stocks_to_rank as (
    select
        new_days.ticker,
        count(*) > valuation_rank_pairs_max_days() as is_sorted
    from new_days
    where (select history.has_earlier_days from history)
    group by new_days.ticker
),

paired_counts as (
    select
        new_days.ticker,
        new_days.trade_date,
        count(earlier.trailing_pe) as trailing_pe_n_before,
        count_at_or_below(earlier.trailing_pe, new_days.trailing_pe) as trailing_pe_le_before,
        count(earlier.forward_pe) as forward_pe_n_before,
        count_at_or_below(earlier.forward_pe, new_days.forward_pe) as forward_pe_le_before,
        count(earlier.price_to_sales_ttm) as price_to_sales_n_before,
        count_at_or_below(earlier.price_to_sales_ttm, new_days.price_to_sales_ttm) as price_to_sales_le_before
    from new_days
    inner join stocks_to_rank
        on new_days.ticker = stocks_to_rank.ticker and not stocks_to_rank.is_sorted
    inner join earlier
        on new_days.ticker = earlier.ticker
    group by new_days.ticker, new_days.trade_date
),

sorted_stocks as (
    select ticker
    from stocks_to_rank
    where is_sorted
),

-- One list of values per sorted stock and multiple: its values before $start_date (no
-- trade_date) and its days written. UNPIVOT leaves NULLs out: they are not values.
earlier_values as (
    unpivot (
        select
            ticker,
            trailing_pe,
            forward_pe,
            price_to_sales_ttm as price_to_sales,
            cast(null as date) as trade_date
        from earlier
        where ticker in (select sorted_stocks.ticker from sorted_stocks)
    )
    on trailing_pe, forward_pe, price_to_sales
    into name multiple value multiple_value
),

written_values as (
    unpivot (
        select
            ticker,
            trailing_pe,
            forward_pe,
            price_to_sales_ttm as price_to_sales,
            trade_date
        from new_days
        where ticker in (select sorted_stocks.ticker from sorted_stocks)
    )
    on trailing_pe, forward_pe, price_to_sales
    into name multiple value multiple_value
),

series_values as (
    select
        ticker,
        multiple,
        multiple_value,
        trade_date
    from earlier_values
    union all
    select
        ticker,
        multiple,
        multiple_value,
        trade_date
    from written_values
),

-- Sorted by value (earlier values first among equals), a day's earlier values at or below it
-- are the rows before it less the days written before it.
value_positions as (
    select
        ticker,
        multiple,
        trade_date,
        row_number() over (
            partition by ticker, multiple
            order by multiple_value, trade_date nulls first
        ) as value_position
    from series_values
),

earlier_at_or_below as (
    select
        ticker,
        multiple,
        trade_date,
        value_position
        - row_number() over (partition by ticker, multiple order by value_position) as le_before
    from value_positions
    where trade_date is not null
),

earlier_totals as (
    select
        ticker,
        multiple,
        count(*) as n_before
    from series_values
    where trade_date is null
    group by ticker, multiple
),

sorted_counts as (
    select
        earlier_at_or_below.ticker,
        earlier_at_or_below.trade_date,
        max(earlier_totals.n_before) filter (
            where earlier_at_or_below.multiple = 'trailing_pe'
        ) as trailing_pe_n_before,
        max(earlier_at_or_below.le_before) filter (
            where earlier_at_or_below.multiple = 'trailing_pe'
        ) as trailing_pe_le_before,
        max(earlier_totals.n_before) filter (
            where earlier_at_or_below.multiple = 'forward_pe'
        ) as forward_pe_n_before,
        max(earlier_at_or_below.le_before) filter (
            where earlier_at_or_below.multiple = 'forward_pe'
        ) as forward_pe_le_before,
        max(earlier_totals.n_before) filter (
            where earlier_at_or_below.multiple = 'price_to_sales'
        ) as price_to_sales_n_before,
        max(earlier_at_or_below.le_before) filter (
            where earlier_at_or_below.multiple = 'price_to_sales'
        ) as price_to_sales_le_before
    from earlier_at_or_below
    inner join earlier_totals
        on
            earlier_at_or_below.ticker = earlier_totals.ticker
            and earlier_at_or_below.multiple = earlier_totals.multiple
    group by earlier_at_or_below.ticker, earlier_at_or_below.trade_date
),

-- Per day written: the stock's multiples before $start_date, how many and how many are <= the
-- day's. No rows in a full build.
earlier_counts as (
    select * from paired_counts
    union all by name
    select * from sorted_counts
),

with_earlier_counts as (
    select
        new_days.ticker,
        new_days.trade_date,
        new_days.close,
        new_days.market_cap,
        new_days.trailing_eps,
        new_days.trailing_pe,
        new_days.forward_eps,
        new_days.forward_pe,
        new_days.revenue_ttm,
        new_days.price_to_sales_ttm,
        new_days.fundamentals_period_end,
        new_days.forward_eps_as_of,
        coalesce(earlier_counts.trailing_pe_n_before, 0) as trailing_pe_n_before,
        coalesce(earlier_counts.trailing_pe_le_before, 0) as trailing_pe_le_before,
        coalesce(earlier_counts.forward_pe_n_before, 0) as forward_pe_n_before,
        coalesce(earlier_counts.forward_pe_le_before, 0) as forward_pe_le_before,
        coalesce(earlier_counts.price_to_sales_n_before, 0) as price_to_sales_n_before,
        coalesce(earlier_counts.price_to_sales_le_before, 0) as price_to_sales_le_before
    from new_days
    left join earlier_counts
        on
            new_days.ticker = earlier_counts.ticker
            and new_days.trade_date = earlier_counts.trade_date
),

final as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        trailing_eps,
        trailing_pe,
        forward_eps,
        forward_pe,
        revenue_ttm,
        price_to_sales_ttm,
        expanding_pct_rank(
            trailing_pe, ticker, trade_date, trailing_pe_n_before, trailing_pe_le_before
        ) as trailing_pe_pct_rank,
        expanding_pct_rank(
            forward_pe, ticker, trade_date, forward_pe_n_before, forward_pe_le_before
        ) as forward_pe_pct_rank,
        expanding_pct_rank(
            price_to_sales_ttm, ticker, trade_date, price_to_sales_n_before, price_to_sales_le_before
        ) as price_to_sales_pct_rank,
        fundamentals_period_end,
        forward_eps_as_of
    from with_earlier_counts
)

select * from final
