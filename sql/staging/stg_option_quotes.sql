-- stg_option_quotes
-- Grain: one row per contract_symbol per snapshot_date.
-- Depends on: raw.option_quotes
-- Materialized: view

with source as (
    select * from raw.option_quotes
),

final as (
    select
        snapshot_date,
        ticker,
        contract_symbol,
        lower(option_type) as option_type,
        expiration_date,
        strike,
        last_price,
        bid,
        ask,
        volume,
        open_interest,
        implied_volatility,
        last_trade_at,
        snapshot_at,
        expiration_date - snapshot_date as days_to_expiry,
        source
    from source
)

select * from final
