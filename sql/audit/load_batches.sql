-- load_batches
-- Grain: one row per dataset batch loaded (or refused) in a run.
-- Layer: audit. What each load delivered, inserted, changed and refused.
create table if not exists audit.load_batches (
    run_id varchar not null,
    table_name varchar not null,
    source varchar not null,
    window_start date,
    window_end date,
    rows_delivered bigint not null,
    rows_inserted bigint not null,
    rows_updated bigint not null,
    rows_unchanged bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamptz not null,
    notes varchar,
    -- The earliest date the batch inserted or changed (NULL: it changed nothing) and when the
    -- marts were last rebuilt over it (NULL: not yet; the next build reaches back to it).
    first_changed date,
    built_at timestamptz
);
