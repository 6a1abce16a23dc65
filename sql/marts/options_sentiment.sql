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

counts as (
    select
        snapshot_date,
        ticker,
        count(*) as n_contracts,
        count(*) filter (where status = 'used') as n_contracts_used,
        count(*) filter (where status = 'expired') as n_expired_excluded,
        count(*) filter (where status = 'stale') as n_stale_excluded,
        count(*) filter (where status = 'used' and not is_iv_usable) as n_placeholder_iv_excluded
    from classified
    group by snapshot_date, ticker
),

used as (
    select
        snapshot_date,
        ticker,
        option_type,
        expiration_date,
        days_to_expiry,
        strike,
        coalesce(volume, 0) as volume,
        coalesce(open_interest, 0) as open_interest,
        implied_volatility,
        is_iv_usable,
        days_to_expiry <= options_short_term_days() as is_short_term
    from classified
    where status = 'used'
),

sums as (
    select
        snapshot_date,
        ticker,
        sum(volume) filter (where option_type = 'call') as call_volume,
        sum(volume) filter (where option_type = 'put') as put_volume,
        sum(open_interest) filter (where option_type = 'call') as call_open_interest,
        sum(open_interest) filter (where option_type = 'put') as put_open_interest,
        sum(volume) filter (where option_type = 'call' and is_short_term) as short_term_call_volume,
        sum(volume) filter (where is_short_term) as short_term_volume
    from used
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
        100 * short_term_call_volume / nullif(short_term_volume, 0) as short_term_call_share_pct
    from sums
),

nearest_expiry as (
    select
        snapshot_date,
        ticker,
        min(expiration_date) as atm_expiration_date
    from used
    where days_to_expiry >= 1 and is_iv_usable
    group by snapshot_date, ticker
),

nearest_chain as (
    select
        used.snapshot_date,
        used.ticker,
        used.option_type,
        used.strike,
        used.implied_volatility,
        nearest_expiry.atm_expiration_date
    from used
    inner join nearest_expiry
        on
            used.snapshot_date = nearest_expiry.snapshot_date
            and used.ticker = nearest_expiry.ticker
            and used.expiration_date = nearest_expiry.atm_expiration_date
    where used.is_iv_usable
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
        counts.snapshot_date,
        counts.ticker,
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
        counts.n_contracts,
        counts.n_contracts_used,
        counts.n_expired_excluded,
        counts.n_stale_excluded,
        counts.n_placeholder_iv_excluded
    from counts
    left join figures
        on
            counts.snapshot_date = figures.snapshot_date
            and counts.ticker = figures.ticker
    left join reference_prices
        on
            counts.snapshot_date = reference_prices.snapshot_date
            and counts.ticker = reference_prices.ticker
    left join atm_iv
        on
            counts.snapshot_date = atm_iv.snapshot_date
            and counts.ticker = atm_iv.ticker
    where counts.snapshot_date >= $start_date
)

select * from final
