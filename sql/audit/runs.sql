-- runs
-- Grain: one row per flow run.
-- Layer: audit. Written at the start of a run (status 'running') and at its end.
create table if not exists audit.runs (
    run_id varchar not null primary key,
    flow varchar not null,
    parameters json,
    started_at timestamptz not null,
    ended_at timestamptz,
    status varchar not null,
    message varchar,
    rows_by_table json
);
