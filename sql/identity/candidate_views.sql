-- What the candidate links are built from, as views the two exports below read: every record to
-- judge in a full run, those joined to stitch_changed otherwise (a view is planned into the query
-- that reads it, so the join probes only the changed records). Per live record: its own key (and
-- the namespace of its kind), its CRM record when that is another record, its email (trimmed,
-- lower-cased), and when it was last seen (in microseconds since the epoch: identity.py formats
-- it, cheaper than the server's text output). Per web event: the ECID and the email seen with it.
CREATE OR REPLACE TEMP VIEW stitch_candidate_record AS
SELECT p.source_key,
       CASE WHEN p.system = 'Marketo' THEN 'marketo'
            WHEN p.record_type = 'lead' THEN 'crm_lead' ELSE 'crm_contact' END AS namespace,
       CASE WHEN p.crm_key <> p.source_key THEN p.crm_key END AS crm_key,
       lower(btrim(p.email)) AS email,
       (extract(epoch FROM coalesce(p.updated_at, p.extracted_at)) * 1000000)::bigint AS seen_us
FROM core_person p
WHERE NOT p.is_deleted;

CREATE OR REPLACE TEMP VIEW stitch_candidate_event AS
SELECT e.person_key, v.namespace, v.value, e.occurred_at, v.priority
FROM core_event e
CROSS JOIN LATERAL (VALUES ('ecid', btrim(e.ecid), 3), ('email', lower(btrim(e.email)), 2)) AS v (namespace, value, priority)
WHERE e.ecid IS NOT NULL AND v.value IS NOT NULL;
