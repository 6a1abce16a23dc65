-- backfill_chunks
-- Grain: one row per dataset chunk a backfill loaded (written in the load's own transaction,
-- so a chunk is recorded if and only if its rows are in raw).
-- Layer: audit. What makes a backfill resumable: a later backfill skips the chunks that done
-- records cover (same dataset and source, a window and tickers that contain the chunk's).
-- built_at: when the marts were last rebuilt over the chunk (NULL: a rebuild is still owed).
create table if not exists audit.backfill_chunks (
    run_id varchar not null,
    dataset varchar not null,
    source_ref varchar not null,
    chunk_start date not null,
    chunk_end date not null,
    tickers json,
    rows_delivered bigint not null,
    rows_inserted bigint not null,
    rows_updated bigint not null,
    rows_unchanged bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamptz not null,
    built_at timestamptz
);
