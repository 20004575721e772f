-- Marketo activities -> core_event, typed through the instance's activity type list. For page
-- visits and link clicks the primary attribute value is the URL.
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
       r._extracted_at
FROM raw_marketo_activities r
LEFT JOIN LATERAL (
    SELECT a."name" AS name
    FROM raw_marketo_activity_types a
    WHERE a._instance = r._instance AND (a."id")::integer = (r."activityTypeId")::integer
    ORDER BY a._extracted_at DESC
    LIMIT 1
) t ON true
WHERE r._instance = %(instance)s
ORDER BY r._source_key, r._extracted_at DESC, r._loaded_at DESC
ON CONFLICT (source_key) DO UPDATE
SET person_key = EXCLUDED.person_key, activity_type_id = EXCLUDED.activity_type_id,
    event_type = EXCLUDED.event_type, occurred_at = EXCLUDED.occurred_at,
    primary_value = EXCLUDED.primary_value, url = EXCLUDED.url, attributes = EXCLUDED.attributes,
    extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
