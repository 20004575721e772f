-- Landed in the lake -> reflected in the profiles, for every batch landed since the previous build
-- (the rows of a batch land together; reading the batch log spares a scan of every raw table).
WITH previous AS (
    SELECT coalesce(max(profiles_built_at), '-infinity'::timestamptz) AS at FROM ops_profile_freshness
), landed AS (
    SELECT b.loaded_at, b.rows FROM ops_ingest_batch b, previous WHERE b.loaded_at > previous.at AND b.rows > 0
), built AS (SELECT clock_timestamp() AS at)
INSERT INTO ops_profile_freshness (run_id, profiles_built_at, changes, profile_lag_p50_s, profile_lag_p95_s,
                                   profile_lag_max_s, profile_window_s)
SELECT %(run_id)s, built.at, coalesce(sum(landed.rows), 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM built.at - landed.loaded_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM built.at - landed.loaded_at)),
       max(extract(epoch FROM built.at - landed.loaded_at)),
       %(window_s)s
FROM built LEFT JOIN landed ON true
GROUP BY built.at
ON CONFLICT (run_id) DO UPDATE
SET profiles_built_at = EXCLUDED.profiles_built_at, changes = EXCLUDED.changes,
    profile_lag_p50_s = EXCLUDED.profile_lag_p50_s, profile_lag_p95_s = EXCLUDED.profile_lag_p95_s,
    profile_lag_max_s = EXCLUDED.profile_lag_max_s
