-- Every identity each changed live record carries, with the rule that refuses it, if any, and its
-- rank on the record (own key first, then CRM record, email, ECID; newest first).
CREATE TEMP TABLE stitch_candidate ON COMMIT DROP AS
WITH live AS (
    SELECT p.* FROM core_person p JOIN stitch_changed c ON c.record_key = p.source_key AND NOT c.gone
), carried AS (
    SELECT source_key AS record_key,
           CASE WHEN system = 'Marketo' THEN 'marketo'
                WHEN record_type = 'lead' THEN 'crm_lead' ELSE 'crm_contact' END AS namespace,
           source_key AS value, coalesce(updated_at, extracted_at) AS seen_at, 0 AS priority
    FROM live
    UNION ALL
    SELECT source_key, CASE WHEN crm_key LIKE '00Q%%' THEN 'crm_lead' ELSE 'crm_contact' END, crm_key,
           coalesce(updated_at, extracted_at), 1
    FROM live WHERE crm_key IS NOT NULL AND crm_key <> source_key
    UNION ALL
    SELECT source_key, 'email', lower(btrim(email)), coalesce(updated_at, extracted_at), 2
    FROM live WHERE email IS NOT NULL
    UNION ALL
    SELECT e.person_key, 'ecid', btrim(e.ecid), e.occurred_at, 3
    FROM core_event e JOIN stitch_changed c ON c.record_key = e.person_key
    WHERE e.ecid IS NOT NULL
    UNION ALL
    SELECT e.person_key, 'email', lower(btrim(e.email)), e.occurred_at, 2
    FROM core_event e JOIN stitch_changed c ON c.record_key = e.person_key
    WHERE e.ecid IS NOT NULL AND e.email IS NOT NULL
), judged AS (
    SELECT record_key, namespace, value, max(seen_at) AS seen_at, min(priority) AS priority,
           CASE WHEN value = ANY(%(blocked_values)s::text[]) OR value ~* ANY(%(blocked_patterns)s::text[])
                     THEN 'blocked value'
                WHEN length(value) > 1024 THEN 'value longer than 1024 characters'
                WHEN namespace = 'ecid' AND value !~ '^[0-9]{38}$' THEN 'ECID not 38 digits'
           END AS refused,
           namespace = 'email' AND split_part(value, '@', 1) = ANY(%(shared_mailboxes)s::text[]) AS shared
    FROM carried
    GROUP BY record_key, namespace, value
)
SELECT *, row_number() OVER (PARTITION BY record_key
                             ORDER BY refused IS NOT NULL, priority, seen_at DESC, value) AS rank
FROM judged
