-- prices_daily
-- Grain: one row per ticker per trade_date (NYSE session).
-- Key: ticker, trade_date (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw. Loaded by warehouse.load (keyed upsert); never edited by hand.
-- close: as-traded, split-adjusted close; adj_close: also adjusted for dividends
-- (equal to close when a source has only one close). split_ratio 1.0 = no split that day.
create table if not exists raw.prices_daily (
    ticker varchar not null,
    trade_date date not null,
    open double,
    high double,
    low double,
    close double not null,
    adj_close double not null,
    volume bigint,
    dividend double not null default 0,
    split_ratio double not null default 1,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null
);
