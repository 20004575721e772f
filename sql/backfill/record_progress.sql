INSERT INTO ops_backfill_progress (source_id, object, windows_total, windows_done, rows, bytes,
                                   quota_used_today, predicted_days, predicted_finish, updated_at)
VALUES (%(source_id)s, %(object)s, %(windows_total)s, %(windows_done)s, %(rows)s, %(bytes)s,
        %(quota_used_today)s, %(predicted_days)s, %(predicted_finish)s, clock_timestamp())
ON CONFLICT (source_id, object) DO UPDATE
SET windows_total = EXCLUDED.windows_total, windows_done = EXCLUDED.windows_done, rows = EXCLUDED.rows,
    bytes = EXCLUDED.bytes, quota_used_today = EXCLUDED.quota_used_today,
    predicted_days = EXCLUDED.predicted_days, predicted_finish = EXCLUDED.predicted_finish,
    updated_at = EXCLUDED.updated_at
