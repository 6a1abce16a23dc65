-- stg_fundamentals_quarterly
-- Grain: one row per ticker per period_end per report_date (every publication is kept).
-- Depends on: raw.fundamentals_quarterly
-- Materialized: view

with source as (
    select * from raw.fundamentals_quarterly
),

final as (
    select
        ticker,
        period_end,
        report_date,
        fiscal_period,
        revenue,
        cost_of_revenue,
        coalesce(gross_profit, revenue - cost_of_revenue) as gross_profit,
        operating_income,
        net_income,
        diluted_eps,
        diluted_shares,
        source
    from source
)

select * from final
