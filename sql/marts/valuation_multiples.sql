-- valuation_multiples
-- Grain: one row per stock (universe role 'stock') per trade_date on which its market cap is known.
-- Depends on: marts.market_caps_daily, marts.fundamentals_quarterly,
--     staging.stg_valuation_snapshots, staging.stg_prices_daily, staging.stg_universe
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- Each stock's valuation multiples per day, unranked: valuation_daily ranks them against the
-- stock's history, counting each new day against the rows already here instead of working out
-- every earlier day's multiples again (a night's ranking reads this table's history, not the
-- as-of joins behind it). Incremental with no look-back: a day's multiples need no other day's
-- row (the as-of joins read their inputs' whole history, which is small: filings, snapshots).
-- Point in time: market_cap as in market_caps_daily; trailing_eps and revenue_ttm come from the
-- latest quarter first published on or before the date (fundamentals_quarterly, its TTM as
-- known on its report_date), and are NULL unless that row has all 4 quarters, or when that
-- quarter ended more than valuation_fundamentals_max_age_days() before the date. forward_eps
-- is the latest snapshot's on or before the date that has one, at most
-- valuation_snapshot_max_age_days() old. Every EPS is on the close's split basis: filings
-- through diluted_eps_adjusted, snapshots through their own P/E (see forward_estimates).
-- Multiples are NULL unless their base (EPS, revenue) is positive (positive_multiple).

with market_caps as (
    select
        ticker,
        trade_date,
        close,
        market_cap
    from marts.market_caps_daily
    where trade_date >= $input_start_date
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

-- Only snapshots young enough to be used on a day written, and the prices from the oldest
-- such snapshot's session on (its close, the splits after it).
snapshots as (
    select
        ticker,
        snapshot_date,
        forward_eps,
        forward_pe
    from staging.stg_valuation_snapshots
    where
        (forward_eps is not null or forward_pe > 0)
        and snapshot_date >= $input_start_date - valuation_snapshot_max_age_days()
),

prices as (
    select
        ticker,
        trade_date,
        close,
        split_ratio
    from staging.stg_prices_daily
    where
        close > 0
        and trade_date >= $input_start_date - valuation_snapshot_max_age_days() - 7
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
usable_figures as (
    select
        ticker,
        trade_date,
        close,
        market_cap,
        trade_date - period_end <= valuation_fundamentals_max_age_days() as is_fundamentals_current,
        trade_date - snapshot_date <= valuation_snapshot_max_age_days() as is_snapshot_current,
        case when is_fundamentals_current then diluted_eps_adjusted_ttm end as trailing_eps,
        case when is_snapshot_current then forward_eps end as forward_eps,
        case when is_fundamentals_current then revenue_ttm end as revenue_ttm,
        case when is_fundamentals_current then period_end end as fundamentals_period_end,
        case when is_snapshot_current then snapshot_date end as forward_eps_as_of
    from with_forward
),

final as (
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
    where trade_date >= $start_date
)

select * from final
