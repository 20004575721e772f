INSERT INTO ops_quota_ledger (source_id, quota_day, export_bytes)
VALUES (%(source_id)s, %(quota_day)s, %(bytes)s)
ON CONFLICT (source_id, quota_day) DO UPDATE
SET export_bytes = ops_quota_ledger.export_bytes + EXCLUDED.export_bytes
