-- fetch_outcomes
-- Grain: one row per run per dataset per ticker a network source tried (ticker '*' for a
-- market-wide request such as CBOE's put/call ratios).
-- Layer: audit. ok: rows came; empty: the provider had none for the window; failed: why
-- (rate limited after N attempts, unknown or delisted ticker, malformed response).
create table if not exists audit.fetch_outcomes (
    run_id varchar not null,
    dataset varchar not null,
    ticker varchar not null,
    status varchar not null,
    rows bigint,
    attempts bigint,
    reason varchar,
    source varchar not null,
    recorded_at timestamptz not null
);
