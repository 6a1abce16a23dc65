-- fundamentals_quarterly
-- Grain: one row per ticker per fiscal quarter (period_end), as first published.
-- Depends on: staging.stg_fundamentals_quarterly
-- Materialized: table
--
-- Point in time: a row is its quarter as known on its report_date, and nothing published later
-- changes it. The quarter's own figures are its first publication (earliest report_date); the
-- comparisons (QoQ, YoY, the TTM sums, the 8-quarter margin) use each earlier quarter as known
-- that day, i.e. its latest publication on or before this row's report_date, and leave out
-- quarters not yet public. A restatement shows in the rows of quarters first published after
-- it; restatements as such are in staging.stg_fundamentals_quarterly.
-- The one exception, as for adj_close: the *_adjusted columns are on the latest split basis
-- (split_factor from staging), so the split-adjusted close can be divided by them.
-- Quarters are matched by period_end distance (is_within_quarters / is_quarters_before), which
-- holds for 13/14-week fiscal quarters. Trailing figures need every quarter of their window (4
-- or 8, each with a value), else they are NULL; a missing prior or year-ago quarter gives a
-- NULL growth rate, never a comparison with the wrong quarter.
-- gross_margin_8q_avg_pct is the simple mean of the 8 quarterly margins;
-- gross_margin_8q_pooled_pct is sum(gross profit) / sum(revenue) over the same quarters.

with publications as (
    select
        ticker,
        period_end,
        report_date,
        fiscal_period,
        revenue,
        gross_profit,
        operating_income,
        net_income,
        diluted_eps,
        diluted_shares,
        split_factor,
        diluted_eps_adjusted,
        diluted_shares_adjusted
    from staging.stg_fundamentals_quarterly
),

first_publications as (
    select
        ticker,
        period_end,
        report_date,
        fiscal_period,
        revenue,
        gross_profit,
        operating_income,
        net_income,
        diluted_eps,
        diluted_shares,
        split_factor,
        diluted_eps_adjusted,
        diluted_shares_adjusted
    from publications
    qualify row_number() over (partition by ticker, period_end order by report_date) = 1
),

-- For each quarter's first publication: the quarters of the two years ending with it, each as
-- it was known on that report_date.
known_at_report as (
    select
        f.ticker,
        f.period_end,
        p.period_end as known_period_end,
        p.revenue,
        p.gross_profit,
        pct_of(p.gross_profit, p.revenue) as gross_margin_pct,
        p.diluted_eps_adjusted
    from first_publications as f
    inner join publications as p
        on
            f.ticker = p.ticker
            and f.report_date >= p.report_date
            and is_within_quarters(p.period_end, f.period_end, 8)
    qualify row_number() over (
        partition by f.ticker, f.period_end, p.period_end
        order by p.report_date desc
    ) = 1
),

trailing_figures as (
    select
        ticker,
        period_end,
        count(revenue) filter (
            where is_within_quarters(known_period_end, period_end, 4)
        ) as n_revenue_4q,
        sum(revenue) filter (
            where is_within_quarters(known_period_end, period_end, 4)
        ) as revenue_4q,
        count(diluted_eps_adjusted) filter (
            where is_within_quarters(known_period_end, period_end, 4)
        ) as n_eps_4q,
        sum(diluted_eps_adjusted) filter (
            where is_within_quarters(known_period_end, period_end, 4)
        ) as eps_4q,
        count(revenue) filter (
            where is_quarters_before(known_period_end, period_end, 1)
        ) as n_prior_quarter,
        max(revenue) filter (
            where is_quarters_before(known_period_end, period_end, 1)
        ) as revenue_prior_quarter,
        count(revenue) filter (
            where is_quarters_before(known_period_end, period_end, 4)
        ) as n_year_ago,
        max(revenue) filter (
            where is_quarters_before(known_period_end, period_end, 4)
        ) as revenue_year_ago,
        count(gross_margin_pct) as n_margin_8q,
        avg(gross_margin_pct) as gross_margin_8q_avg_pct,
        pct_of(
            sum(gross_profit) filter (where gross_margin_pct is not null),
            sum(revenue) filter (where gross_margin_pct is not null)
        ) as gross_margin_8q_pooled_pct
    from known_at_report
    group by ticker, period_end
),

final as (
    select
        f.ticker,
        f.period_end,
        f.fiscal_period,
        f.report_date,
        f.revenue,
        f.gross_profit,
        pct_of(f.gross_profit, f.revenue) as gross_margin_pct,
        f.operating_income,
        pct_of(f.operating_income, f.revenue) as operating_margin_pct,
        f.net_income,
        pct_of(f.net_income, f.revenue) as net_margin_pct,
        f.diluted_eps,
        f.diluted_shares,
        f.split_factor,
        f.diluted_eps_adjusted,
        f.diluted_shares_adjusted,
        case when t.n_prior_quarter = 1 then pct_diff(f.revenue, t.revenue_prior_quarter) end
            as revenue_qoq_pct,
        case when t.n_year_ago = 1 then pct_diff(f.revenue, t.revenue_year_ago) end
            as revenue_yoy_pct,
        case when t.n_revenue_4q = 4 then t.revenue_4q end as revenue_ttm,
        case when t.n_eps_4q = 4 then t.eps_4q end as diluted_eps_adjusted_ttm,
        case when t.n_margin_8q = 8 then t.gross_margin_8q_avg_pct end as gross_margin_8q_avg_pct,
        case when t.n_margin_8q = 8 then t.gross_margin_8q_pooled_pct end as gross_margin_8q_pooled_pct
    from first_publications as f
    inner join trailing_figures as t
        on
            f.ticker = t.ticker
            and f.period_end = t.period_end
)

select * from final
