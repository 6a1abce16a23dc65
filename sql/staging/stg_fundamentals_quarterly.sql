-- stg_fundamentals_quarterly
-- Grain: one row per ticker per period_end per report_date (every publication is kept).
-- Depends on: raw.fundamentals_quarterly
-- Materialized: view
--
-- Share counts and EPS come as each source publishes them: Yahoo and the sample source restate
-- them for later splits, a company's own releases (the real NVDA file) do not. split_factor
-- brings a publication to the latest split basis, the basis of the split-adjusted close: walking
-- the ticker's quarters in period order (each quarter's first publication), a share count that
-- jumps by a split-like factor (see split_factor_of in sql/macros.sql) against the previous
-- quarter marks a split between the two, and every earlier quarter is multiplied by the product
-- of the later jumps. A restated source shows no jump, so its factor is 1.
-- diluted_shares_adjusted = diluted_shares * split_factor; diluted_eps_adjusted = diluted_eps
-- / split_factor. Like adj_close, the adjusted columns are restated when a later split is seen.

with source as (
    select * from raw.fundamentals_quarterly
),

quarters as (
    select
        ticker,
        period_end,
        diluted_shares
    from source
    where diluted_shares > 0
    qualify row_number() over (partition by ticker, period_end order by report_date) = 1
),

jumps as (
    select
        ticker,
        period_end,
        split_factor_of(
            lead(diluted_shares) over (partition by ticker order by period_end) / diluted_shares
        ) as jump_to_next
    from quarters
),

factors as (
    select
        ticker,
        period_end,
        coalesce(
            product(jump_to_next) over (
                partition by ticker
                order by period_end
                rows between current row and unbounded following
            ),
            1
        ) as split_factor
    from jumps
),

final as (
    select
        source.ticker,
        source.period_end,
        source.report_date,
        source.fiscal_period,
        source.revenue,
        source.cost_of_revenue,
        coalesce(source.gross_profit, source.revenue - source.cost_of_revenue) as gross_profit,
        source.operating_income,
        source.net_income,
        source.diluted_eps,
        source.diluted_shares,
        coalesce(factors.split_factor, 1) as split_factor,
        source.diluted_shares * coalesce(factors.split_factor, 1) as diluted_shares_adjusted,
        source.diluted_eps / coalesce(factors.split_factor, 1) as diluted_eps_adjusted,
        source.source
    from source
    left join factors
        on
            source.ticker = factors.ticker
            and source.period_end = factors.period_end
)

select * from final
