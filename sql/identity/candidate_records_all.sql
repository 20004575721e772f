-- A full run's candidate_records: every live record.
COPY (
SELECT r.source_key, r.namespace, r.crm_key, r.email, r.seen_us
FROM stitch_candidate_record r
) TO STDOUT WITH (FORMAT csv)
