-- The changed live records (CSV), one row each (candidate_views): identity.py turns each row into
-- its candidate links (own key first, then CRM record, email) and judges them vectorised; one row
-- a record costs far less here than one row a link.
COPY (
SELECT r.source_key, r.namespace, r.crm_key, r.email, r.seen_us
FROM stitch_candidate_record r
JOIN stitch_changed c ON c.record_key = r.source_key
) TO STDOUT WITH (FORMAT csv)
