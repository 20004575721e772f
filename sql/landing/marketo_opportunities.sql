SELECT _source_key, _batch_id, "marketoGUID" AS record_id, NULL::text AS email, NULL::text AS ecid,
       CASE WHEN "updatedAt" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("updatedAt")::timestamptz END AS changed_at, CASE WHEN "amount" ~ '^-?\d+(\.\d+)?$' THEN ("amount")::numeric END AS amount,
       "_parse_error" AS parse_error
FROM raw_marketo_opportunities WHERE _batch_id = ANY(%(batch_ids)s)
