-- runs
-- Grain: one row per flow run.
-- Key: run_id (kept unique by the loader: DuckLake has no primary keys)
-- Layer: audit. Written at the start of a run (status 'running') and at its end.
-- snapshot_id: on a DuckLake warehouse, the snapshot the run published when it finished (what
-- readers saw from then on, and what `--as-of RUN_ID` reads); NULL on a single DuckDB file,
-- and for a run that never finished.
create table if not exists audit.runs (
    run_id varchar not null,
    flow varchar not null,
    parameters json,
    started_at timestamptz not null,
    ended_at timestamptz,
    status varchar not null,
    message varchar,
    rows_by_table json,
    snapshot_id bigint
);
