-- Marketo activities -> core_event, typed through the instance's activity type list. For page
-- visits and link clicks the primary attribute value is the URL.
WITH activity_type AS (   -- the newest landed name of each of the instance's activity types
    SELECT DISTINCT ON ((a."id")::integer) (a."id")::integer AS id, a."name" AS name
    FROM raw_marketo_activity_types a JOIN ops_ingest_batch tb ON tb.batch_id = a._batch_id
    WHERE a._instance = %(instance)s
    ORDER BY (a."id")::integer, tb.extracted_at DESC, tb.loaded_at DESC, a._ctid DESC
)
INSERT INTO core_event AS c (source_key, instance, person_key, activity_type_id, event_type, occurred_at,
                             primary_value, url, attributes, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, r._instance,
       (r."leadId") || '@' || r._instance || '.Marketo',
       (r."activityTypeId")::integer, t.name,
       (r."activityDate")::timestamptz,
       r."primaryAttributeValue",
       CASE WHEN t.name IN ('Visit Webpage', 'Click Link') THEN r."primaryAttributeValue" END,
       -- Bulk files carry attributes as a JSON object; REST as [{name, value}].
       CASE jsonb_typeof(r."attributes"::jsonb)
            WHEN 'array' THEN (SELECT coalesce(jsonb_object_agg(a->>'name', a->'value'), '{}'::jsonb)
                               FROM jsonb_array_elements(r."attributes"::jsonb) a)
            WHEN 'object' THEN r."attributes"::jsonb
            ELSE '{}'::jsonb
       END,
       b.extracted_at
FROM raw_marketo_activities r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
LEFT JOIN activity_type t ON t.id = (r."activityTypeId")::integer
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET person_key = EXCLUDED.person_key, activity_type_id = EXCLUDED.activity_type_id,
    event_type = EXCLUDED.event_type, occurred_at = EXCLUDED.occurred_at,
    primary_value = EXCLUDED.primary_value, url = EXCLUDED.url, attributes = EXCLUDED.attributes,
    extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
