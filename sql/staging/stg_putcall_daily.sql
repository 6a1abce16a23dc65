-- stg_putcall_daily
-- Grain: one row per trade_date per scope.
-- Depends on: raw.putcall_daily
-- Materialized: view

with source as (
    select * from raw.putcall_daily
),

final as (
    select
        trade_date,
        lower(scope) as scope,
        call_volume,
        put_volume,
        ratio,
        source
    from source
)

select * from final
