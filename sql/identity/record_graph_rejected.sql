INSERT INTO identity_rejected_link (record_key, namespace, value, reason, run_id)
SELECT DISTINCT ON (record_key, namespace, value) record_key, namespace, value, reason, %(run_id)s
FROM stitch_graph_rejected
ORDER BY record_key, namespace, value
ON CONFLICT (record_key, namespace, value) DO UPDATE
SET reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, rejected_at = clock_timestamp()
