INSERT INTO ops_landing_check (batch_id, loaded_at, rows_checked, rows_quarantined)
VALUES (%(batch_id)s, %(loaded_at)s, %(rows_checked)s, %(rows_quarantined)s)
ON CONFLICT (batch_id) DO UPDATE
SET loaded_at = EXCLUDED.loaded_at, rows_checked = EXCLUDED.rows_checked,
    rows_quarantined = EXCLUDED.rows_quarantined, checked_at = clock_timestamp()
