-- universe_changes
-- Grain: one row per load of the universe file that changed what the marts read of it (a ticker
-- added or removed, or moved to another cohort or role; a new name or sector, or the same file
-- at another path, is not such a change), written in the load's own transaction.
-- Layer: audit. Cohorts and roles apply back through history, so such a change owes a rebuild
-- of every day of the marts. built_at: when that rebuild was published (NULL: still owed, e.g.
-- the run's build failed its checks or the run was killed; the next build pays it).
create table if not exists audit.universe_changes (
    run_id varchar not null,
    source varchar not null,
    tickers_added bigint not null,
    tickers_changed bigint not null,
    tickers_removed bigint not null,
    changed_at timestamptz not null,
    built_at timestamptz
);
