-- What the stream's earlier syncs landed within the lookback: (record id, SystemModstamp).
SELECT record_id, modstamp FROM ops_sync_recent
WHERE source_id = %(source_id)s AND stream = %(stream)s
