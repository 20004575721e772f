-- The graph's edges. A unique namespace is scoped by instance: one Marketo lead per instance,
-- one CRM contact per org.
INSERT INTO identity_link (record_key, namespace, value, unique_scope, joins, seen_at)
SELECT record_key, namespace, value,
       CASE WHEN namespace = ANY(%(unique_namespaces)s::text[])
            THEN namespace || CASE WHEN namespace IN ('marketo', 'crm_contact', 'crm_lead')
                                   THEN ':' || regexp_replace(split_part(value, '@', 2), '\.[A-Za-z]+$', '')
                                   ELSE '' END
       END,
       NOT shared, seen_at
FROM stitch_candidate
WHERE refused IS NULL AND rank <= %(max_per_record)s
