-- options_sentiment
-- Grain: one row per snapshot_date per ticker (the night's option chain, summarised).
-- Depends on: staging.stg_option_quotes, staging.stg_prices_daily
-- Materialized: incremental by snapshot_date
-- Lookback: 5 sessions
--
-- Each snapshot stands alone (no window reaches across snapshots), so an incremental build
-- reads only the snapshots a load touched: the chain is the largest raw table. The lookback
-- is for the reference close, the latest on or before the snapshot date and at most
-- options_stale_days() calendar days older (a chain saved on a weekend or holiday holds the
-- previous session's quotes); the runner reads 18 sessions back, which covers it.
-- Every contract falls in exactly one class, tested in this order: expired (expiry before the
-- snapshot), stale (never traded, or last traded more than options_stale_days() calendar days
-- before the snapshot, dates in UTC), used. Only used contracts enter the figures; the others
-- are counted. A used contract whose implied volatility is a placeholder (below
-- options_placeholder_iv(), or missing) keeps its volume and open interest, which are real (the
-- IV solver fails on deep in-the-money and expiring contracts), but its IV is left out of the
-- near-the-money IV; those are counted too.
-- Near-the-money IV: the nearest expiry at least a day away with a usable IV; per option type
-- the contract whose strike is nearest the reference price (the lower strike on a tie); the
-- mean of the call's and the put's IV, in percent.

with quotes as (
    select
        snapshot_date,
        ticker,
        option_type,
        expiration_date,
        days_to_expiry,
        strike,
        volume,
        open_interest,
        implied_volatility,
        cast(timezone('UTC', last_trade_at) as date) as last_trade_date
    from staging.stg_option_quotes
    where snapshot_date >= $start_date
),

closes as (
    select
        ticker,
        trade_date,
        close
    from staging.stg_prices_daily
    where trade_date >= $input_start_date
),

classified as (
    select
        snapshot_date,
        ticker,
        option_type,
        expiration_date,
        days_to_expiry,
        strike,
        volume,
        open_interest,
        implied_volatility,
        case
            when expiration_date < snapshot_date then 'expired'
            when
                last_trade_date is null
                or snapshot_date - last_trade_date > options_stale_days()
                then 'stale'
            else 'used'
        end as status,
        coalesce(
            implied_volatility >= options_placeholder_iv() and not isnan(implied_volatility),
            false
        ) as is_iv_usable
    from quotes
),

-- Every per-ticker figure of the snapshot in one pass over its quotes: the counts over all of
-- them, the sums over those used, and the nearest expiry (at least a day away) with a usable
-- implied volatility.
per_ticker as (
    select
        snapshot_date,
        ticker,
        count(*) as n_contracts,
        count(*) filter (where status = 'used') as n_contracts_used,
        count(*) filter (where status = 'expired') as n_expired_excluded,
        count(*) filter (where status = 'stale') as n_stale_excluded,
        count(*) filter (where status = 'used' and not is_iv_usable) as n_placeholder_iv_excluded,
        sum(coalesce(volume, 0)) filter (where status = 'used' and option_type = 'call') as call_volume,
        sum(coalesce(volume, 0)) filter (where status = 'used' and option_type = 'put') as put_volume,
        sum(coalesce(open_interest, 0)) filter (
            where status = 'used' and option_type = 'call'
        ) as call_open_interest,
        sum(coalesce(open_interest, 0)) filter (
            where status = 'used' and option_type = 'put'
        ) as put_open_interest,
        sum(coalesce(volume, 0)) filter (
            where status = 'used' and option_type = 'call' and days_to_expiry <= options_short_term_days()
        ) as short_term_call_volume,
        sum(coalesce(volume, 0)) filter (
            where status = 'used' and days_to_expiry <= options_short_term_days()
        ) as short_term_volume,
        min(expiration_date) filter (
            where status = 'used' and days_to_expiry >= 1 and is_iv_usable
        ) as atm_expiration_date
    from classified
    group by snapshot_date, ticker
),

figures as (
    select
        snapshot_date,
        ticker,
        cast(call_volume as bigint) as call_volume,
        cast(put_volume as bigint) as put_volume,
        cast(call_open_interest as bigint) as call_open_interest,
        cast(put_open_interest as bigint) as put_open_interest,
        put_volume / nullif(call_volume, 0) as put_call_volume_ratio,
        put_open_interest / nullif(call_open_interest, 0) as put_call_oi_ratio,
        100 * short_term_call_volume / nullif(short_term_volume, 0) as short_term_call_share_pct,
        n_contracts,
        n_contracts_used,
        n_expired_excluded,
        n_stale_excluded,
        n_placeholder_iv_excluded
    from per_ticker
),

nearest_chain as (
    select
        classified.snapshot_date,
        classified.ticker,
        classified.option_type,
        classified.strike,
        classified.implied_volatility,
        per_ticker.atm_expiration_date
    from classified
    inner join per_ticker
        on
            classified.snapshot_date = per_ticker.snapshot_date
            and classified.ticker = per_ticker.ticker
            and classified.expiration_date = per_ticker.atm_expiration_date
    where classified.status = 'used' and classified.is_iv_usable
),

median_strikes as (
    select
        snapshot_date,
        ticker,
        atm_expiration_date,
        median(strike) as median_strike
    from nearest_chain
    group by snapshot_date, ticker, atm_expiration_date
),

-- The latest close on or before the snapshot date, unless it is older than a stale contract
-- may be; without one, the chain's median strike.
reference_prices as (
    select
        median_strikes.snapshot_date,
        median_strikes.ticker,
        median_strikes.atm_expiration_date,
        coalesce(
            case
                when median_strikes.snapshot_date - closes.trade_date <= options_stale_days()
                    then closes.close
            end,
            median_strikes.median_strike
        ) as atm_reference_price
    from median_strikes
    asof left join closes
        on
            median_strikes.ticker = closes.ticker
            and median_strikes.snapshot_date >= closes.trade_date
),

-- Per option type, the contract whose strike is nearest the reference (the lower on a tie).
at_the_money as (
    select
        nearest_chain.snapshot_date,
        nearest_chain.ticker,
        nearest_chain.option_type,
        nearest_chain.implied_volatility
    from nearest_chain
    inner join reference_prices
        on
            nearest_chain.snapshot_date = reference_prices.snapshot_date
            and nearest_chain.ticker = reference_prices.ticker
    qualify row_number() over (
        partition by nearest_chain.snapshot_date, nearest_chain.ticker, nearest_chain.option_type
        order by abs(nearest_chain.strike - reference_prices.atm_reference_price), nearest_chain.strike
    ) = 1
),

atm_iv as (
    select
        snapshot_date,
        ticker,
        100 * avg(implied_volatility) as atm_iv_nearest_pct
    from at_the_money
    group by snapshot_date, ticker
),

final as (
    select
        figures.snapshot_date,
        figures.ticker,
        coalesce(figures.call_volume, 0) as call_volume,
        coalesce(figures.put_volume, 0) as put_volume,
        coalesce(figures.call_open_interest, 0) as call_open_interest,
        coalesce(figures.put_open_interest, 0) as put_open_interest,
        figures.put_call_volume_ratio,
        figures.put_call_oi_ratio,
        figures.short_term_call_share_pct,
        atm_iv.atm_iv_nearest_pct,
        reference_prices.atm_expiration_date,
        reference_prices.atm_reference_price,
        figures.n_contracts,
        figures.n_contracts_used,
        figures.n_expired_excluded,
        figures.n_stale_excluded,
        figures.n_placeholder_iv_excluded
    from figures
    left join reference_prices
        on
            figures.snapshot_date = reference_prices.snapshot_date
            and figures.ticker = reference_prices.ticker
    left join atm_iv
        on
            figures.snapshot_date = atm_iv.snapshot_date
            and figures.ticker = atm_iv.ticker
    where figures.snapshot_date >= $start_date
)

select * from final
