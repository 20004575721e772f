-- Landed in the lake -> reflected in the profiles, for every raw row landed since the previous build.
WITH previous AS (
    SELECT coalesce(max(profiles_built_at), '-infinity'::timestamptz) AS at FROM ops_profile_freshness
), landed AS (
    SELECT _loaded_at FROM raw_marketo_leads, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_marketo_activities, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_marketo_deleted_leads, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_salesforce_contact, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_salesforce_lead, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_salesforce_account, previous WHERE _loaded_at > previous.at
    UNION ALL SELECT _loaded_at FROM raw_salesforce_opportunity, previous WHERE _loaded_at > previous.at
), built AS (SELECT clock_timestamp() AS at)
INSERT INTO ops_profile_freshness (run_id, profiles_built_at, changes, profile_lag_p50_s, profile_lag_p95_s,
                                   profile_lag_max_s, profile_window_s)
SELECT %(run_id)s, built.at, count(landed._loaded_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM built.at - landed._loaded_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM built.at - landed._loaded_at)),
       max(extract(epoch FROM built.at - landed._loaded_at)),
       %(window_s)s
FROM built LEFT JOIN landed ON true
GROUP BY built.at
ON CONFLICT (run_id) DO UPDATE
SET profiles_built_at = EXCLUDED.profiles_built_at, changes = EXCLUDED.changes,
    profile_lag_p50_s = EXCLUDED.profile_lag_p50_s, profile_lag_p95_s = EXCLUDED.profile_lag_p95_s,
    profile_lag_max_s = EXCLUDED.profile_lag_max_s
