-- File exports and API destinations keep using activation_state / activation_sync_log; a run also
-- records what it wrote (files, rows, where) or why it wrote nothing.

ALTER TABLE activation_sync_log
    ADD COLUMN files        integer,
    ADD COLUMN rows_written bigint,
    ADD COLUMN location     text,
    ADD COLUMN note         text;
