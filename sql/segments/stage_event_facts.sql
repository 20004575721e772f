-- One scan of the events in the widest window of a pass: per person, one count per event condition
-- of its segments (columns e0, e1, ...: count(*) FILTER (WHERE ...), values bound).
CREATE TEMP TABLE segment_event_facts ON COMMIT DROP AS
SELECT e.person_id, {columns}
FROM profile_event e
WHERE e.event_type = ANY(%(event_types)s::text[])
  AND e.occurred_at > %(window_start)s
  AND e.occurred_at <= %(as_of)s
  {person_filter}
GROUP BY e.person_id
