-- The newest change in a landed batch becomes the stream's cursor (if any row carries one).
INSERT INTO ops_sync_cursor (source_id, stream, cursor, updated_at)
SELECT %(source_id)s, %(stream)s,
       to_char(max(("SystemModstamp")::timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
       clock_timestamp()
FROM {table}
WHERE _batch_id = %(batch_id)s
HAVING max(("SystemModstamp")::timestamptz) IS NOT NULL
ON CONFLICT (source_id, stream) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at
