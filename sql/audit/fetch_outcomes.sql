-- fetch_outcomes
-- Grain: one row per run per dataset per ticker a network source tried (ticker '*' for a
-- market-wide request such as CBOE's put/call ratios).
-- Layer: audit. ok: rows came; empty: the provider had none for the window; failed: why
-- (rate limited after N attempts, unknown or delisted ticker, malformed response).
-- retryable (failed rows only): true when a later try may fetch it (rate limits, outages,
-- timeouts, malformed answers: what `bellwether run --retry-failed` fetches again), false for
-- a ticker the provider does not know (unknown or delisted); NULL for ok and empty rows.
create table if not exists audit.fetch_outcomes (
    run_id varchar not null,
    dataset varchar not null,
    ticker varchar not null,
    status varchar not null,
    rows bigint,
    attempts bigint,
    reason varchar,
    source varchar not null,
    recorded_at timestamptz not null,
    retryable boolean
);
