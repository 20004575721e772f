UPDATE ops_bulk_job
SET status = 'loaded', rows = %(rows)s, file_size = %(file_size)s, loaded_at = clock_timestamp()
WHERE source_id = %(source_id)s AND object = %(object)s AND window_start = %(window_start)s
