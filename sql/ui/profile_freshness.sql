-- Lake -> profile lag of the latest stitching run, against its window.
SELECT run_id, profiles_built_at, changes, profile_lag_p50_s, profile_lag_p95_s, profile_lag_max_s,
       profile_window_s
FROM ops_profile_freshness
ORDER BY profiles_built_at DESC
LIMIT 1
