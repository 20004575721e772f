-- The latest sync of each destination audience, with the records that failed in it.
SELECT s.destination_id, s.audience_key, s.segment_id, s.run_id, s.dry_run,
       s.finished_at IS NOT NULL AS finished, s.audience_size, s.planned_add, s.planned_remove,
       s.added, s.removed, s.skipped, s.api_calls, s.match_rate, s.rows_written, s.note,
       s.started_at, s.finished_at,
       (SELECT count(*) FROM activation_record_status r
        WHERE r.destination_id = s.destination_id AND r.audience_key = s.audience_key
          AND r.run_id = s.run_id AND r.status = 'failed') AS failed
FROM (
    SELECT DISTINCT ON (destination_id, audience_key) *
    FROM activation_sync_log
    ORDER BY destination_id, audience_key, started_at DESC
) s
ORDER BY s.destination_id, s.audience_key
