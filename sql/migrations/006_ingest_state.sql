-- Ingestion state: bulk export jobs (so a crash resumes the same export instead of paying for it
-- again), the quota ledger, backfill progress, sync cursors and freshness measurements.

CREATE TABLE ops_bulk_job (
    source_id    text        NOT NULL,
    object       text        NOT NULL,          -- leads | activities
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    export_id    text,
    status       text        NOT NULL DEFAULT 'planned',  -- planned | Created | Queued | Processing | Completed | Failed | Canceled | loaded
    file_size    bigint,
    rows         integer,
    batch_id     text        NOT NULL,
    created_at   timestamptz,
    loaded_at    timestamptz,
    PRIMARY KEY (source_id, object, window_start)
);

CREATE TABLE ops_quota_ledger (                  -- per source instance and source-local quota day
    source_id    text    NOT NULL,
    quota_day    date    NOT NULL,
    export_bytes bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (source_id, quota_day)
);

CREATE TABLE ops_backfill_progress (
    source_id        text        NOT NULL,
    object           text        NOT NULL,
    windows_total    integer     NOT NULL,
    windows_done     integer     NOT NULL,
    rows             bigint      NOT NULL,
    bytes            bigint      NOT NULL,
    quota_used_today bigint      NOT NULL,
    predicted_days   integer,
    predicted_finish timestamptz,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (source_id, object)
);

CREATE TABLE ops_sync_cursor (
    source_id  text        NOT NULL,
    stream     text        NOT NULL,
    cursor     text        NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (source_id, stream)
);

CREATE TABLE ops_freshness (
    source_id      text        NOT NULL,
    stream         text        NOT NULL,
    run_id         text        NOT NULL,
    rows           integer     NOT NULL,
    newest_change  timestamptz,            -- the latest source change in the sync
    lake_lag_p50_s double precision,       -- source change -> raw (landed)
    lake_lag_p95_s double precision,
    lake_lag_max_s double precision,
    lake_window_s  integer     NOT NULL,
    measured_at    timestamptz NOT NULL,
    PRIMARY KEY (source_id, stream, run_id)
);

CREATE TABLE ops_profile_freshness (
    run_id            text        NOT NULL PRIMARY KEY,
    profiles_built_at timestamptz NOT NULL,
    changes           integer     NOT NULL,    -- source changes landed since the previous build
    profile_lag_p50_s double precision,        -- raw landed -> profile built
    profile_lag_p95_s double precision,
    profile_lag_max_s double precision,
    profile_window_s  integer     NOT NULL
);

CREATE TABLE raw_marketo_deleted_leads (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_deleted_leads (_batch_id);

CREATE TABLE raw_quarantine (                    -- rows a landing checkpoint refused, with the reason
    raw_table     text        NOT NULL,
    _source_key   text,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _record       jsonb,
    reason        text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON raw_quarantine (_batch_id);
