-- valuation_daily
-- Grain: one row per stock (universe role 'stock') per trade_date on which its market cap is known.
-- Depends on: marts.market_caps_daily, marts.fundamentals_quarterly,
--     staging.stg_valuation_snapshots, staging.stg_prices_daily, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: all
--
-- Incremental, reading every earlier day: each *_pct_rank is against the stock's whole history
-- up to the date (expanding_pct_rank). The multiples are worked out for every day (cheap: as-of
-- joins), but the ranks only for the days written ($start_date on): their window sees those
-- days, and the stock's multiples before $start_date come in as two counts per day (how many,
-- how many <= the day's; earlier_counts: pair by pair for a night, by one sort of the stock's
-- values for a backfill). A full build has no earlier days, so both ways give the same ranks.
-- Point in time: market_cap as in market_caps_daily; trailing_eps and revenue_ttm come from the
-- latest quarter first published on or before the date (fundamentals_quarterly, its TTM as
-- known on its report_date), and are NULL unless that row has all 4 quarters, or when that
-- quarter ended more than valuation_fundamentals_max_age_days() before the date. forward_eps
-- is the latest snapshot's on or before the date that has one, at most
-- valuation_snapshot_max_age_days() old. Every EPS is on the close's split basis: filings
-- through diluted_eps_adjusted, snapshots through their own P/E (see forward_estimates).
-- Multiples are NULL unless their base (EPS, revenue) is positive (positive_multiple).
-- *_pct_rank: the share, 0-100, of the stock's multiples so far (today included) that are <=
-- today's; NULL before valuation_pct_rank_min_obs() of them (see expanding_pct_rank).

with market_caps as (
    select
        ticker,
        trade_date,
        close,
        market_cap
    from marts.market_caps_daily
),

stocks as (
    select ticker
    from staging.stg_universe
    where role = 'stock'
),

stock_days as (
    select
        market_caps.ticker,
        market_caps.trade_date,
        market_caps.close,
        market_caps.market_cap
    from market_caps
    inner join stocks
        on market_caps.ticker = stocks.ticker
),

-- One row per report date: when two quarters are first published the same day, the later one.
fundamentals as (
    select
        ticker,
        report_date,
        period_end,
        revenue_ttm,
        diluted_eps_adjusted_ttm
    from marts.fundamentals_quarterly
    qualify row_number() over (partition by ticker, report_date order by period_end desc) = 1
),

snapshots as (
    select
        ticker,
        snapshot_date,
        forward_eps,
        forward_pe
    from staging.stg_valuation_snapshots
    where forward_eps is not null or forward_pe > 0
),

prices as (
    select
        ticker,
        trade_date,
        close,
        split_ratio
    from staging.stg_prices_daily
    where close > 0
),

-- The close of the snapshot's session (the last one on or before it, at most a week before).
snapshot_prices as (
    select
        snapshots.ticker,
        snapshots.snapshot_date,
        snapshots.forward_eps,
        snapshots.forward_pe,
        case when prices.trade_date >= snapshots.snapshot_date - 7 then prices.close end as snapshot_close
    from snapshots
    asof left join prices
        on
            snapshots.ticker = prices.ticker
            and snapshots.snapshot_date >= prices.trade_date
),

-- Forward EPS on the split basis of the close. A snapshot's EPS is per share of whatever basis
-- its provider used (Yahoo: that night's shares; the sample source: today's), but its P/E is
-- price over EPS on one basis, so the snapshot session's close over the provider's forward P/E
-- is the EPS on the close's basis. Without a positive P/E (a loss, or an EPS the provider
-- could not price), the EPS is taken as of its night and divided by every split after it.
forward_estimates as (
    select
        snapshot_prices.ticker,
        snapshot_prices.snapshot_date,
        coalesce(
            case
                when snapshot_prices.forward_pe > 0
                    then snapshot_prices.snapshot_close / snapshot_prices.forward_pe
            end,
            snapshot_prices.forward_eps / coalesce(product(prices.split_ratio), 1)
        ) as forward_eps
    from snapshot_prices
    left join prices
        on
            snapshot_prices.ticker = prices.ticker
            and snapshot_prices.snapshot_date < prices.trade_date
            and prices.split_ratio > 0
            and prices.split_ratio != 1
    group by
        snapshot_prices.ticker,
        snapshot_prices.snapshot_date,
        snapshot_prices.forward_eps,
        snapshot_prices.forward_pe,
        snapshot_prices.snapshot_close
),

with_fundamentals as (
    select
        stock_days.ticker,
        stock_days.trade_date,
        stock_days.close,
        stock_days.market_cap,
        fundamentals.period_end,
        fundamentals.revenue_ttm,
        fundamentals.diluted_eps_adjusted_ttm
    from stock_days
    asof left join fundamentals
        on
            stock_days.ticker = fundamentals.ticker
            and stock_days.trade_date >= fundamentals.report_date
),

with_forward as (
    select
        with_fundamentals.ticker,
        with_fundamentals.trade_date,
        with_fundamentals.close,
        with_fundamentals.market_cap,
        with_fundamentals.period_end,
        with_fundamentals.revenue_ttm,
        with_fundamentals.diluted_eps_adjusted_ttm,
        forward_estimates.snapshot_date,
        forward_estimates.forward_eps
    from with_fundamentals
    asof left join forward_estimates
        on
            with_fundamentals.ticker = forward_estimates.ticker
            and with_fundamentals.trade_date >= forward_estimates.snapshot_date
),

-- Stale figures are dropped: the date must be within the age limits of their sources.
current_figures as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        trade_date - period_end <= valuation_fundamentals_max_age_days() as is_fundamentals_current,
        trade_date - snapshot_date <= valuation_snapshot_max_age_days() as is_snapshot_current,
        period_end,
        revenue_ttm,
        diluted_eps_adjusted_ttm,
        snapshot_date,
        forward_eps
    from with_forward
),

usable_figures as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        case when is_fundamentals_current then diluted_eps_adjusted_ttm end as trailing_eps,
        case when is_snapshot_current then forward_eps end as forward_eps,
        case when is_fundamentals_current then revenue_ttm end as revenue_ttm,
        case when is_fundamentals_current then period_end end as fundamentals_period_end,
        case when is_snapshot_current then snapshot_date end as forward_eps_as_of
    from current_figures
),

multiples as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        trailing_eps,
        positive_multiple(close, trailing_eps) as trailing_pe,
        forward_eps,
        positive_multiple(close, forward_eps) as forward_pe,
        revenue_ttm,
        positive_multiple(market_cap, revenue_ttm) as price_to_sales_ttm,
        fundamentals_period_end,
        forward_eps_as_of
    from usable_figures
),

-- The days this build writes (every day in a full build).
new_days as (
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
    from multiples
    where trade_date >= $start_date
),

-- How a written day's earlier values are counted depends on how many days its stock has to
-- rank. Up to valuation_rank_pairs_max_days() (a night): each is compared with every earlier
-- value of the stock (pairs: days x history). More (a backfill of years, where pairs would run
-- to billions): the stock's values are sorted once. Both give the same counts; a full build has
-- no earlier values and does neither.
earlier_stocks as (
    select distinct ticker
    from multiples
    where trade_date < $start_date
),

stocks_to_rank as (
    select
        new_days.ticker,
        count(*) > valuation_rank_pairs_max_days() as is_sorted
    from new_days
    where new_days.ticker in (select earlier_stocks.ticker from earlier_stocks)
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
    inner join multiples as earlier
        on
            new_days.ticker = earlier.ticker
            and earlier.trade_date < $start_date
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
        from multiples
        where trade_date < $start_date and ticker in (select sorted_stocks.ticker from sorted_stocks)
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
