-- The fields the landing checkpoint inspects, for the batches of one run.
SELECT _source_key, _batch_id, CASE WHEN ecid IS NOT NULL THEN _source_key END AS record_id,
       lower(btrim(email)) AS email, ecid,
       CASE WHEN "timestamp" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("timestamp")::timestamptz END AS changed_at,
       NULL::numeric AS amount, "_parse_error" AS parse_error
FROM raw_web_events WHERE _batch_id = ANY(%(batch_ids)s)
