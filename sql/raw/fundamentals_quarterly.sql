-- fundamentals_quarterly
-- Grain: one row per ticker per fiscal quarter (period_end) per publication (report_date).
-- Key: ticker, period_end, report_date (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw. report_date is when the figures became public: point-in-time joins use it.
-- A restatement published later is a new row, so what was known on any day is kept.
create table if not exists raw.fundamentals_quarterly (
    ticker varchar not null,
    period_end date not null,
    report_date date not null,
    fiscal_period varchar,
    revenue double,
    cost_of_revenue double,
    gross_profit double,
    operating_income double,
    net_income double,
    diluted_eps double,
    diluted_shares double,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
