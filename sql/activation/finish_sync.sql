UPDATE activation_sync_log
SET added = %(added)s, removed = %(removed)s, skipped = %(skipped)s, api_calls = %(api_calls)s,
    finished_at = %(finished_at)s
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND run_id = %(run_id)s
