-- The links of the records being recomputed that did not change, for the component computation
-- (CSV): the changed records' links are those identity.py has just judged. Last seen in
-- microseconds since the epoch, converted as the judged ones are (ties stay ties).
COPY (
    SELECT l.record_key, l.namespace, l.value, coalesce(l.unique_scope, ''), l.joins,
           (extract(epoch FROM l.seen_at) * 1000000)::bigint
    FROM stitch_records r
    JOIN identity_link l USING (record_key)
    WHERE NOT EXISTS (SELECT 1 FROM stitch_changed c WHERE c.record_key = r.record_key)
) TO STDOUT WITH (FORMAT csv)
