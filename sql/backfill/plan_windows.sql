-- Record the backfill's windows once; windows already planned (or done) keep their state.
INSERT INTO ops_bulk_job (source_id, object, window_start, window_end, batch_id)
SELECT %(source_id)s, %(object)s, w.window_start, w.window_end,
       'backfill:' || %(source_id)s || ':' || %(object)s || ':' || to_char(w.window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS w(window_start, window_end)
ON CONFLICT (source_id, object, window_start) DO NOTHING
