-- The live records to judge (CSV): every one in a full run, the changed ones otherwise. One row
-- each with the identities it carries: its own key (and the namespace of its kind), its CRM record
-- when that is another record, its email (trimmed, lower-cased), and when it was last seen (in
-- microseconds since the epoch: identity.py formats it, cheaper than the server's text output).
-- identity.py turns each row into its candidate links (own key first, then CRM record, email) and
-- judges them vectorised: one row a record costs far less here than one row a link.
COPY (
SELECT p.source_key,
       CASE WHEN p.system = 'Marketo' THEN 'marketo'
            WHEN p.record_type = 'lead' THEN 'crm_lead' ELSE 'crm_contact' END,
       CASE WHEN p.crm_key <> p.source_key THEN p.crm_key END,
       lower(btrim(p.email)),
       (extract(epoch FROM coalesce(p.updated_at, p.extracted_at)) * 1000000)::bigint
FROM core_person p
WHERE NOT p.is_deleted
  AND (%(full)s OR p.source_key IN (SELECT record_key FROM stitch_changed))
) TO STDOUT WITH (FORMAT csv)
