SELECT _source_key, _batch_id, "Id" AS record_id, lower(btrim("Email")) AS email, NULL::text AS ecid,
       CASE WHEN "SystemModstamp" ~ '^\d{4}-\d{2}-\d{2}T' THEN ("SystemModstamp")::timestamptz END AS changed_at, NULL::numeric AS amount,
       "_parse_error" AS parse_error
FROM raw_salesforce_contact WHERE _batch_id = ANY(%(batch_ids)s)
