-- The records this sync landed join the stream's recent set; what has left the lookback
-- (older than the new cursor less the lookback) is forgotten.
WITH landed AS (
    INSERT INTO ops_sync_recent (source_id, stream, record_id, modstamp)
    SELECT %(source_id)s, %(stream)s, l.record_id, l.modstamp
    FROM unnest(%(record_ids)s::text[], %(modstamps)s::timestamptz[]) AS l (record_id, modstamp)
    ON CONFLICT DO NOTHING
)
DELETE FROM ops_sync_recent
WHERE source_id = %(source_id)s AND stream = %(stream)s AND modstamp < %(keep_after)s
