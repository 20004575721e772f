-- The links of the records being recomputed, for the component computation (CSV).
COPY (
    SELECT l.record_key, l.namespace, l.value, coalesce(l.unique_scope, ''), l.joins,
           extract(epoch FROM l.seen_at)
    FROM identity_link l JOIN stitch_records r USING (record_key)
) TO STDOUT WITH (FORMAT csv)
