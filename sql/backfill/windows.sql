SELECT window_start, window_end, export_id, status, batch_id
FROM ops_bulk_job
WHERE source_id = %(source_id)s AND object = %(object)s AND window_start < %(until)s
ORDER BY window_start
