-- A full run's candidate_event_links: the identities of every web event.
COPY (
SELECT e.person_key, e.namespace, e.value, (extract(epoch FROM max(e.occurred_at)) * 1000000)::bigint, min(e.priority)
FROM stitch_candidate_event e
GROUP BY e.person_key, e.namespace, e.value
) TO STDOUT WITH (FORMAT csv)
