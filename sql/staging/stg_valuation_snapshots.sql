-- stg_valuation_snapshots
-- Grain: one row per ticker per snapshot_date.
-- Depends on: raw.valuation_snapshots
-- Materialized: view

with source as (
    select * from raw.valuation_snapshots
),

final as (
    select
        snapshot_date,
        ticker,
        market_cap,
        shares_outstanding,
        forward_eps,
        trailing_eps,
        forward_pe,
        trailing_pe,
        price_to_sales_ttm,
        sector,
        industry,
        source
    from source
)

select * from final
