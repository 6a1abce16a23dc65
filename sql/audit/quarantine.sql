-- quarantine
-- Grain: one row per refused input row (or unreadable file) per run.
-- Key: quarantine_id (kept unique by the loader: DuckLake has no primary keys)
-- Layer: audit. Holds the original values so nothing delivered is ever lost.
create table if not exists audit.quarantine (
    quarantine_id bigint not null,
    run_id varchar not null,
    table_name varchar not null,
    check_name varchar not null,
    reason varchar not null,
    source_ref varchar,
    line bigint,
    ticker varchar,
    row_key json,
    row_json json,
    quarantined_at timestamptz not null
);
