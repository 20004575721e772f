SELECT _source_key, _batch_id, _record->>'Id' AS record_id, lower(btrim(_record->>'Email')) AS email,
       CASE WHEN _record->>'SystemModstamp' ~ '^\d{4}-\d{2}-\d{2}T' THEN (_record->>'SystemModstamp')::timestamptz END AS changed_at, NULL::numeric AS amount,
       _record->>'_parse_error' AS parse_error
FROM raw_salesforce_contact WHERE _batch_id = ANY(%(batch_ids)s)
