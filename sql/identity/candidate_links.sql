-- Every identity each changed live record carries (CSV), with the record rule that refuses it, if
-- any (blocked patterns aside: identity.py matches them), and its unique scope: one Marketo lead
-- per instance, one CRM contact per org. identity.py ranks the links on their record (own key
-- first, then CRM record, email, ECID; newest first) for the cap of identities per record, and
-- writes the accepted and the refused links back.
COPY (
WITH record_links AS (  -- a record's own links, one scan: unique per record, nothing to group
    SELECT p.source_key AS record_key, v.namespace, v.value, coalesce(p.updated_at, p.extracted_at) AS seen_at,
           v.priority
    FROM core_person p
    JOIN stitch_changed c ON c.record_key = p.source_key AND NOT c.gone
    CROSS JOIN LATERAL (VALUES
        (CASE WHEN p.system = 'Marketo' THEN 'marketo'
              WHEN p.record_type = 'lead' THEN 'crm_lead' ELSE 'crm_contact' END, p.source_key, 0),
        (CASE WHEN p.crm_key LIKE '00Q%%' THEN 'crm_lead' ELSE 'crm_contact' END,
         CASE WHEN p.crm_key <> p.source_key THEN p.crm_key END, 1),
        ('email', lower(btrim(p.email)), 2)
    ) AS v (namespace, value, priority)
    WHERE v.value IS NOT NULL
), event_links AS (     -- events repeat their identities: grouped here, few rows
    SELECT e.person_key AS record_key, v.namespace, v.value, max(e.occurred_at) AS seen_at,
           min(v.priority) AS priority
    FROM core_event e
    JOIN stitch_changed c ON c.record_key = e.person_key
    CROSS JOIN LATERAL (VALUES ('ecid', btrim(e.ecid), 3), ('email', lower(btrim(e.email)), 2)) AS v (namespace, value, priority)
    WHERE e.ecid IS NOT NULL AND v.value IS NOT NULL
    GROUP BY e.person_key, v.namespace, v.value
), judged AS (          -- a record's identity seen in both: once (grouping all links spilled to disk)
    SELECT coalesce(r.record_key, e.record_key) AS record_key, coalesce(r.namespace, e.namespace) AS namespace,
           coalesce(r.value, e.value) AS value, greatest(r.seen_at, e.seen_at) AS seen_at,
           least(r.priority, e.priority) AS priority
    FROM record_links r
    FULL JOIN event_links e
        ON e.record_key = r.record_key AND e.namespace = r.namespace AND e.value = r.value
)
SELECT record_key, namespace, value,
       CASE WHEN namespace = ANY(%(unique_namespaces)s::text[])
            THEN namespace || CASE WHEN namespace IN ('marketo', 'crm_contact', 'crm_lead')
                                   THEN ':' || regexp_replace(split_part(value, '@', 2), '\.[A-Za-z]+$', '')
                                   ELSE '' END
       END AS unique_scope,
       seen_at, extract(epoch FROM seen_at) AS seen_epoch, priority,
       -- (the blocked patterns are matched in identity.py, vectorised: a regex per row costs here)
       CASE WHEN value = ANY(%(blocked_values)s::text[]) THEN 'blocked value'
            WHEN length(value) > 1024 THEN 'value longer than 1024 characters'
            WHEN namespace = 'ecid' AND value !~ '^[0-9]{38}$' THEN 'ECID not 38 digits'
       END AS refused,
       namespace = 'email' AND split_part(value, '@', 1) = ANY(%(shared_mailboxes)s::text[]) AS shared
FROM judged
) TO STDOUT WITH (FORMAT csv)
