-- universe
-- Grain: one row per ticker in the universe file (config/universe.csv by default).
-- Key: ticker (kept unique by the loader: DuckLake has no primary keys)
-- Layer: raw reference table, replaced whole from the file users edit on every run.
create table if not exists raw.universe (
    ticker varchar not null,
    name varchar not null,
    sector varchar not null,
    cohort varchar,
    role varchar not null,
    source varchar not null,
    run_id varchar not null,
    loaded_at timestamptz not null,
    -- GICS sub-industry (S&P 500 universe); last because migration 6 appended it to older files.
    sub_industry varchar
);
