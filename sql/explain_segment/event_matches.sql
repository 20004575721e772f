-- A person's events that an event condition counts: its type, in the window before %(as_of)s, passing
-- its filters (as sql/segments/event_exists.sql reads them); the newest 50, with the total.
SELECT e.event_type, e.occurred_at, e.url, e.primary_value, count(*) OVER () AS total
FROM profile_event e
WHERE e.person_id = %(person_id)s AND e.event_type = {event_type}
  AND e.occurred_at > %(as_of)s - make_interval(hours => {window_hours}::int)
  AND e.occurred_at <= %(as_of)s AND {event_filter}
ORDER BY e.occurred_at DESC, e.source_key
LIMIT 50
