-- valuation_snapshots
-- Grain: one row per ticker per snapshot_date.
-- Key: snapshot_date, ticker (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw. Providers serve these fields only "as of now": each night's snapshot is kept,
-- and is their only history.
create table if not exists raw.valuation_snapshots (
    snapshot_date date not null,
    ticker varchar not null,
    market_cap double,
    shares_outstanding double,
    forward_eps double,
    trailing_eps double,
    forward_pe double,
    trailing_pe double,
    price_to_sales_ttm double,
    sector varchar,
    industry varchar,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
