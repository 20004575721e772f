-- The records a Salesforce sync landed within its lookback: the next sync re-reads that window
-- (records can commit with a SystemModstamp earlier than one already seen) and lands only what
-- it has not landed already, so a sync every minute does not land each change ten times over.
CREATE TABLE ops_sync_recent (
    source_id   text        NOT NULL,
    stream      text        NOT NULL,
    record_id   text        NOT NULL,
    modstamp    timestamptz NOT NULL,
    PRIMARY KEY (source_id, stream, record_id, modstamp)
);
