-- check_results
-- Grain: one row per check run on one batch (a landed batch or a built table) in a run.
-- Layer: audit. Every data check's outcome, passing or not: what was checked, how many rows
-- failed and a sample of their keys.
create table if not exists audit.check_results (
    run_id varchar not null,
    stage varchar not null,
    table_name varchar not null,
    check_name varchar not null,
    check_kind varchar not null,
    severity varchar not null,
    action varchar not null,
    success boolean not null,
    rows_checked bigint,
    unexpected_count bigint,
    sample_keys json,
    batch_ref varchar,
    message varchar,
    checked_at timestamptz not null
);
