-- The audience a destination created for a segment on its side (e.g. a LinkedIn DMP segment id),
-- recorded as soon as it is created so that a later run never creates a second one.

CREATE TABLE activation_remote_audience (
    destination_id text        NOT NULL,
    audience_key   text        NOT NULL,
    remote_id      text        NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (destination_id, audience_key)
);
