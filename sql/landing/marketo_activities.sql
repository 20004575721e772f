SELECT _source_key, _batch_id, "marketoGUID" AS record_id, NULL::text AS email, NULL::text AS ecid,
       CASE WHEN "activityDate" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("activityDate")::timestamptz END AS changed_at, NULL::numeric AS amount,
       "_parse_error" AS parse_error
FROM raw_marketo_activities WHERE _batch_id = ANY(%(batch_ids)s)
