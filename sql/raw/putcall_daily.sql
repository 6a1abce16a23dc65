-- putcall_daily
-- Grain: one row per trade_date per scope (total, equity, index, vix, spx, etp).
-- Key: trade_date, scope (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw. Market-wide put/call volume ratios; volumes are NULL where only the ratio
-- was published.
create table if not exists raw.putcall_daily (
    trade_date date not null,
    scope varchar not null,
    call_volume bigint,
    put_volume bigint,
    ratio double not null,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
