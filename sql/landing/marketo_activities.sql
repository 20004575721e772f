SELECT _source_key, _batch_id, _record->>'marketoGUID' AS record_id, NULL::text AS email,
       CASE WHEN _record->>'activityDate' ~ '^\d{4}-\d{2}-\d{2}T' THEN (_record->>'activityDate')::timestamptz END AS changed_at, NULL::numeric AS amount,
       _record->>'_parse_error' AS parse_error
FROM raw_marketo_activities WHERE _batch_id = ANY(%(batch_ids)s)
