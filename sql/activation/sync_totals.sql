SELECT added, removed, api_calls
FROM activation_sync_log
WHERE destination_id = %(destination_id)s AND run_id = %(run_id)s
