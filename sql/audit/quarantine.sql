-- quarantine
-- Grain: one row per refused input row (or unreadable file) per run.
-- Layer: audit. Holds the original values so nothing delivered is ever lost.
create sequence if not exists audit.quarantine_id_seq;
create table if not exists audit.quarantine (
    quarantine_id bigint not null primary key default nextval('audit.quarantine_id_seq'),
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
