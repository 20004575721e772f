-- One stitching of a sandbox at a time, however it is started (DAG, demo, CLI): a second waits
-- for the first to commit instead of judging links against a graph that is being rewritten.
SELECT pg_advisory_xact_lock(hashtext('cdp.identity.' || current_schema()))
