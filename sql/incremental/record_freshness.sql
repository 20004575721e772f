INSERT INTO ops_freshness (source_id, stream, run_id, rows, newest_change, lake_lag_p50_s, lake_lag_p95_s,
                           lake_lag_max_s, lake_window_s, measured_at)
VALUES (%(source_id)s, %(stream)s, %(run_id)s, %(rows)s, %(newest_change)s, %(p50)s, %(p95)s, %(max)s,
        %(window_s)s, clock_timestamp())
ON CONFLICT (source_id, stream, run_id) DO UPDATE
SET rows = ops_freshness.rows + EXCLUDED.rows,
    newest_change = greatest(ops_freshness.newest_change, EXCLUDED.newest_change),
    lake_lag_p50_s = EXCLUDED.lake_lag_p50_s,
    lake_lag_p95_s = greatest(ops_freshness.lake_lag_p95_s, EXCLUDED.lake_lag_p95_s),
    lake_lag_max_s = greatest(ops_freshness.lake_lag_max_s, EXCLUDED.lake_lag_max_s),
    measured_at = EXCLUDED.measured_at
