-- option_quotes
-- Grain: one row per contract_symbol per snapshot_date (the night's point-in-time chain).
-- Key: snapshot_date, contract_symbol (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw. Every contract is kept as delivered; stale or placeholder quotes are marked
-- by the checks, not dropped. snapshot_at is when the chain was taken (UTC), when known.
create table if not exists raw.option_quotes (
    snapshot_date date not null,
    ticker varchar not null,
    contract_symbol varchar not null,
    option_type varchar not null,
    expiration_date date not null,
    strike double not null,
    last_price double,
    bid double,
    ask double,
    volume bigint,
    open_interest bigint,
    implied_volatility double,
    last_trade_at timestamptz,
    snapshot_at timestamptz,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
