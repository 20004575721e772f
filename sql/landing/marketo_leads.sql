-- The fields the landing checkpoint inspects, for the batches of one run.
SELECT _source_key, _batch_id, "id" AS record_id, lower(btrim("email")) AS email, NULL::text AS ecid,
       CASE WHEN "updatedAt" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("updatedAt")::timestamptz END AS changed_at, NULL::numeric AS amount,
       "_parse_error" AS parse_error
FROM raw_marketo_leads WHERE _batch_id = ANY(%(batch_ids)s)
