-- The rule-governed identity graph. Nodes are records and the identities they carry
-- ((namespace, value): email, ecid, marketo, crm_contact, crm_lead); a person is a connected
-- component. Links the rules refuse are kept with their reason; person ids are stable across runs,
-- with the lineage of merges and splits.

DROP TABLE identity_link;
CREATE TABLE identity_link (                   -- accepted links: the graph's edges
    record_key   text        NOT NULL,         -- the core record carrying the identity
    namespace    text        NOT NULL,         -- email | ecid | marketo | crm_contact | crm_lead
    value        text        NOT NULL,
    unique_scope text,                         -- e.g. marketo:111-AAA-111: at most one value per person
    joins        boolean     NOT NULL,         -- false: kept on its record, never joins two records
    seen_at      timestamptz NOT NULL,         -- the record's latest change: "oldest" in eviction
    PRIMARY KEY (record_key, namespace, value)
);
CREATE INDEX ON identity_link (namespace, value);

CREATE TABLE identity_rejected_link (          -- links a rule refused, with the rule as the reason
    record_key  text        NOT NULL,
    namespace   text        NOT NULL,
    value       text        NOT NULL,
    reason      text        NOT NULL,
    run_id      text        NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (record_key, namespace, value)
);

CREATE TABLE identity_person (                 -- every person id ever given, live or retired
    person_id      text        PRIMARY KEY,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_run    text        NOT NULL,
    records        integer     NOT NULL,
    identities     integer     NOT NULL,
    retired_at     timestamptz,                -- absorbed by a merge, split, or all records deleted
    retired_reason text
);

CREATE TABLE identity_person_lineage (         -- where a retired id's records went
    person_id    text        NOT NULL,         -- the retired id
    successor_id text        NOT NULL,
    event        text        NOT NULL,         -- merge | split
    run_id       text        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (person_id, successor_id)
);
CREATE INDEX ON identity_person_lineage (successor_id);

-- Profiles over the platform guardrails stay visible but are left out of segmentation.
ALTER TABLE profile_person ADD COLUMN excluded_reason text;

-- Stitching runs incrementally: records changed since the previous run, and the persons they
-- touch, are all it recomputes. changed_at moves whenever a row really changes.
CREATE TABLE identity_run (
    run_id      text        PRIMARY KEY,
    started_at  timestamptz NOT NULL,          -- records changed after this are the next run's work
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    mode        text        NOT NULL,          -- full | incremental
    changed     integer     NOT NULL,          -- records changed since the previous run
    recomputed  integer     NOT NULL,          -- records whose person was recomputed
    persons     integer     NOT NULL
);

CREATE FUNCTION touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END $$;

ALTER TABLE core_person ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX ON core_person (changed_at);
CREATE TRIGGER core_person_changed BEFORE UPDATE ON core_person
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION touch_changed_at();

ALTER TABLE core_event ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX ON core_event (changed_at) WHERE ecid IS NOT NULL;
CREATE TRIGGER core_event_changed BEFORE UPDATE ON core_event
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION touch_changed_at();
