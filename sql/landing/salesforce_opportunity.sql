SELECT _source_key, _batch_id, "Id" AS record_id, NULL::text AS email, NULL::text AS ecid,
       CASE WHEN "SystemModstamp" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("SystemModstamp")::timestamptz END AS changed_at, CASE WHEN "Amount" ~ '^-?\d+(\.\d+)?$' THEN ("Amount")::numeric END AS amount,
       "_parse_error" AS parse_error
FROM raw_salesforce_opportunity WHERE _batch_id = ANY(%(batch_ids)s)
