SELECT count(*), count(*) FILTER (WHERE status = 'loaded'),
       coalesce(sum(rows) FILTER (WHERE status = 'loaded'), 0),
       coalesce(sum(file_size) FILTER (WHERE status = 'loaded'), 0)
FROM ops_bulk_job
WHERE source_id = %(source_id)s AND object = %(object)s AND window_start < %(until)s
