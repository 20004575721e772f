-- A dry run stores its plan (who would be added and removed) instead of calling anyone.
CREATE TABLE activation_plan (
    destination_id text        NOT NULL,
    audience_key   text        NOT NULL,
    run_id         text        NOT NULL,
    person_id      text        NOT NULL,              -- or the account id of an account audience
    action         text        NOT NULL,              -- add | remove
    planned_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (destination_id, audience_key, run_id, person_id, action)
);
ALTER TABLE activation_sync_log ADD COLUMN dry_run boolean NOT NULL DEFAULT false;
