-- market_caps_daily
-- Grain: one row per ticker per trade_date on which the ticker's market cap is known.
-- Depends on: staging.stg_prices_daily, staging.stg_valuation_snapshots, staging.stg_fundamentals_quarterly
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- The market value of the company on each session, point in time. Preferred: the latest
-- valuation snapshot on or before the date and at most valuation_snapshot_max_age_days() old,
-- carried to the date by the price: market_cap = snapshot market cap * close / close on the
-- snapshot's session. That keeps every share class in the company's value (Yahoo's market cap
-- counts GOOGL's class A, B and C; its share count only class A) and is right through a split,
-- since both closes are on the same split basis. Otherwise: the latest filing's split-adjusted
-- diluted shares (report_date on or before the date) * close. shares_outstanding is
-- market_cap / close: the share count on the close's split basis, what a price change is worth.
-- Each row is an as-of lookup, so no look-back is needed: the filings lookup reads the whole
-- staging table; snapshots (and the prices of their sessions) only as far back as one could
-- still be used on a rebuilt day (an older one is past valuation_snapshot_max_age_days()).

with prices as (
    select
        ticker,
        trade_date,
        close
    from staging.stg_prices_daily
    where
        close > 0
        and trade_date >= $input_start_date - valuation_snapshot_max_age_days() - 7
),

snapshots as (
    select
        ticker,
        snapshot_date,
        market_cap
    from staging.stg_valuation_snapshots
    where
        market_cap > 0
        and snapshot_date >= $input_start_date - valuation_snapshot_max_age_days()
),

filings as (
    select
        ticker,
        report_date,
        diluted_shares_adjusted
    from staging.stg_fundamentals_quarterly
    where diluted_shares_adjusted > 0
    qualify row_number() over (partition by ticker, report_date order by period_end desc) = 1
),

-- The close of the snapshot's session (the last one on or before it, at most a week before).
snapshot_prices as (
    select
        snapshots.ticker,
        snapshots.snapshot_date,
        snapshots.market_cap,
        prices.close as snapshot_close
    from snapshots
    asof inner join prices
        on
            snapshots.ticker = prices.ticker
            and snapshots.snapshot_date >= prices.trade_date
    where prices.trade_date >= snapshots.snapshot_date - 7
),

days as (
    select
        ticker,
        trade_date,
        close
    from prices
    where trade_date >= $input_start_date
),

with_snapshot as (
    select
        days.ticker,
        days.trade_date,
        days.close,
        snapshot_prices.snapshot_date,
        snapshot_prices.market_cap * days.close / snapshot_prices.snapshot_close as snapshot_market_cap
    from days
    asof left join snapshot_prices
        on
            days.ticker = snapshot_prices.ticker
            and days.trade_date >= snapshot_prices.snapshot_date
),

with_filing as (
    select
        with_snapshot.ticker,
        with_snapshot.trade_date,
        with_snapshot.close,
        with_snapshot.snapshot_date,
        with_snapshot.snapshot_market_cap,
        filings.report_date,
        filings.diluted_shares_adjusted * with_snapshot.close as filing_market_cap
    from with_snapshot
    asof left join filings
        on
            with_snapshot.ticker = filings.ticker
            and with_snapshot.trade_date >= filings.report_date
),

chosen as (
    select
        ticker,
        trade_date,
        close,
        coalesce(
            trade_date - snapshot_date <= valuation_snapshot_max_age_days(), false
        ) as use_snapshot,
        snapshot_date,
        snapshot_market_cap,
        report_date,
        filing_market_cap
    from with_filing
),

final as (
    select
        ticker,
        trade_date,
        close,
        case when use_snapshot then snapshot_market_cap else filing_market_cap end / close
            as shares_outstanding,
        case when use_snapshot then snapshot_market_cap else filing_market_cap end as market_cap,
        case when use_snapshot then 'snapshot' else 'filing' end as shares_source,
        case when use_snapshot then snapshot_date else report_date end as shares_as_of
    from chosen
    where
        trade_date >= $start_date
        and (use_snapshot or filing_market_cap is not null)
)

select * from final
