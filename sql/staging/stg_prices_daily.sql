-- stg_prices_daily
-- Grain: one row per ticker per trade_date.
-- Depends on: raw.prices_daily
-- Materialized: view

with source as (
    select * from raw.prices_daily
),

final as (
    select
        ticker,
        trade_date,
        open,
        high,
        low,
        close,
        adj_close,
        volume,
        dividend,
        split_ratio,
        source
    from source
)

select * from final
