-- Activation state per destination, and operational records.

CREATE TABLE activation_state (              -- what each destination holds, as we sent it
    destination_id text NOT NULL,
    audience_key   text NOT NULL,           -- e.g. the static list id
    person_id      text NOT NULL,
    member_key     text NOT NULL,           -- e.g. the Marketo lead id
    payload_hash   text NOT NULL,
    synced_at      timestamptz NOT NULL,
    PRIMARY KEY (destination_id, audience_key, person_id)
);

CREATE TABLE activation_record_status (      -- per-record outcome of the latest attempt
    destination_id text NOT NULL,
    audience_key   text NOT NULL,
    person_id      text NOT NULL,
    action         text NOT NULL,           -- add | remove
    status         text NOT NULL,           -- added | removed | skipped | failed
    reason         text,
    run_id         text NOT NULL,
    PRIMARY KEY (destination_id, audience_key, person_id, action)
);

CREATE TABLE activation_sync_log (
    destination_id text        NOT NULL,
    audience_key   text        NOT NULL,
    run_id         text        NOT NULL,
    segment_id     text        NOT NULL,
    audience_size  integer     NOT NULL,
    planned_add    integer     NOT NULL,
    planned_remove integer     NOT NULL,
    added          integer,
    removed        integer,
    skipped        integer,
    api_calls      integer,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    PRIMARY KEY (destination_id, audience_key, run_id)
);

CREATE TABLE ops_checkpoint_result (
    checkpoint  text        NOT NULL,
    run_id      text        NOT NULL,
    success     boolean     NOT NULL,
    details     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (checkpoint, run_id)
);

CREATE TABLE ops_ingest_batch (
    batch_id     text PRIMARY KEY,
    source_id    text        NOT NULL,
    object       text        NOT NULL,
    rows         integer     NOT NULL,
    api_calls    integer     NOT NULL,
    extracted_at timestamptz NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
