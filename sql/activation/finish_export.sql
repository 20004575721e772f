UPDATE activation_sync_log
SET added = %(added)s, removed = %(removed)s, skipped = 0, api_calls = 0, files = %(files)s,
    rows_written = %(rows_written)s, location = %(location)s, note = %(note)s, finished_at = %(finished_at)s
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND run_id = %(run_id)s
