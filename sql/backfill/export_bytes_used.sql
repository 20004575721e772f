SELECT coalesce(sum(export_bytes), 0) FROM ops_quota_ledger
WHERE source_id = %(source_id)s AND quota_day = %(quota_day)s
