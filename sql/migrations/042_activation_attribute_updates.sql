-- Marketo destinations with update_attributes keep their members' leads equal to the mapped profile
-- attributes: activation_state.payload_hash is what was last sent, and a run sends only the members
-- whose attributes changed since (Sync Leads updateOnly by lead id). The sync log counts them.
ALTER TABLE activation_sync_log
    ADD COLUMN planned_update integer,
    ADD COLUMN updated        integer;

-- Members a Marketo run found no lead for (or would not create, being unsubscribed), as they were
-- when looked up: until their email or consent changes, or retry_after passes, a run matches them
-- only through the warehouse (identity graph, ECIDs), so an unchanged run makes no lookup call.
CREATE TABLE activation_unmatched (
    destination_id text        NOT NULL,
    audience_key   text        NOT NULL,
    person_id      text        NOT NULL,
    email          text,
    unsubscribed   boolean     NOT NULL,
    reason         text        NOT NULL,
    looked_up_at   timestamptz NOT NULL,
    PRIMARY KEY (destination_id, audience_key, person_id)
);
