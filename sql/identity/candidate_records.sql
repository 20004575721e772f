-- The changed live records (CSV), one row each (candidate_views): identity.py turns each row into
-- its candidate links (own key first, then CRM record, email) and judges them vectorised; one row
-- a record costs far less here than one row a link. Last seen in microseconds since the epoch:
-- identity.py formats it, cheaper than the server's text output.
COPY (
SELECT r.source_key, r.namespace, r.crm_key, r.email, (extract(epoch FROM r.seen_at) * 1000000)::bigint
FROM stitch_candidate_record r
JOIN stitch_changed c ON c.record_key = r.source_key
) TO STDOUT WITH (FORMAT csv)
