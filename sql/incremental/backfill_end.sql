-- Where incremental syncs take over from the backfill: the end of its last loaded window.
SELECT max(window_end) FROM ops_bulk_job
WHERE source_id = %(source_id)s AND status = 'loaded'
