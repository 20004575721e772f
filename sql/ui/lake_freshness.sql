-- Source change -> lake lag of each stream's latest incremental sync, against its window.
SELECT DISTINCT ON (source_id, stream)
       source_id, stream, run_id, rows, measured_at, lake_lag_p50_s, lake_lag_p95_s, lake_lag_max_s,
       lake_window_s
FROM ops_freshness
ORDER BY source_id, stream, measured_at DESC
