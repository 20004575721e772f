UPDATE ops_bulk_job
SET export_id = %(export_id)s, status = %(status)s, file_size = coalesce(%(file_size)s, file_size),
    created_at = coalesce(created_at, %(created_at)s)
WHERE source_id = %(source_id)s AND object = %(object)s AND window_start = %(window_start)s
