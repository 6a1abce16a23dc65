-- stg_universe
-- Grain: one row per ticker in the universe.
-- Depends on: raw.universe
-- Materialized: view

with source as (
    select * from raw.universe
),

final as (
    select
        ticker,
        name,
        sector,
        sub_industry,
        cohort,
        role,
        role in ('index_proxy', 'sector_proxy') as is_index_proxy
    from source
)

select * from final
