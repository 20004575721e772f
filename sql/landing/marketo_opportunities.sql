SELECT _source_key, _batch_id, _record->>'marketoGUID' AS record_id, NULL::text AS email,
       CASE WHEN _record->>'updatedAt' ~ '^\d{4}-\d{2}-\d{2}T' THEN (_record->>'updatedAt')::timestamptz END AS changed_at, CASE WHEN _record->>'amount' ~ '^-?\d+(\.\d+)?$' THEN (_record->>'amount')::numeric END AS amount,
       _record->>'_parse_error' AS parse_error
FROM raw_marketo_opportunities WHERE _batch_id = ANY(%(batch_ids)s)
