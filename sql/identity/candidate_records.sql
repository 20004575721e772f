-- The changed live records (CSV), one row each with the identities it carries: its own key (and
-- the namespace of its kind), its CRM record when that is another record, its email (trimmed,
-- lower-cased), and when it was last seen (as text, and as seconds since the epoch for ranking).
-- identity.py turns each row into its candidate links (own key first, then CRM record, email) and
-- judges them vectorised: one row a record costs far less here than one row a link.
COPY (
SELECT p.source_key,
       CASE WHEN p.system = 'Marketo' THEN 'marketo'
            WHEN p.record_type = 'lead' THEN 'crm_lead' ELSE 'crm_contact' END,
       CASE WHEN p.crm_key <> p.source_key THEN p.crm_key END,
       lower(btrim(p.email)),
       coalesce(p.updated_at, p.extracted_at),
       extract(epoch FROM coalesce(p.updated_at, p.extracted_at))
FROM core_person p
JOIN stitch_changed c ON c.record_key = p.source_key AND NOT c.gone
) TO STDOUT WITH (FORMAT csv)
