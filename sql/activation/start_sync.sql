-- Intent before any call: a re-run can tell a sync that started from one that never did.
INSERT INTO activation_sync_log (destination_id, audience_key, run_id, segment_id, audience_size,
                                 planned_add, planned_remove, started_at)
VALUES (%(destination_id)s, %(audience_key)s, %(run_id)s, %(segment_id)s, %(audience_size)s,
        %(planned_add)s, %(planned_remove)s, %(started_at)s)
ON CONFLICT (destination_id, audience_key, run_id) DO UPDATE
SET audience_size = EXCLUDED.audience_size, planned_add = EXCLUDED.planned_add,
    planned_remove = EXCLUDED.planned_remove, started_at = EXCLUDED.started_at,
    added = NULL, removed = NULL, skipped = NULL, api_calls = NULL, finished_at = NULL
