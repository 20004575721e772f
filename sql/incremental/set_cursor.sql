INSERT INTO ops_sync_cursor (source_id, stream, cursor, updated_at)
VALUES (%(source_id)s, %(stream)s, %(cursor)s, clock_timestamp())
ON CONFLICT (source_id, stream) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at
