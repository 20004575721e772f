-- A person's events of a condition's type that it does not count, with why: outside the window before
-- %(as_of)s, or not passing the filters; the newest 10, with the total.
SELECT event_type, occurred_at, url, primary_value, in_window, passes_filters, count(*) OVER () AS total
FROM (SELECT e.event_type, e.occurred_at, e.url, e.primary_value, e.source_key,
             e.occurred_at > %(as_of)s - make_interval(hours => {window_hours}::int)
                 AND e.occurred_at <= %(as_of)s AS in_window,
             coalesce(({event_filter}), false) AS passes_filters
      FROM profile_event e
      WHERE e.person_id = %(person_id)s AND e.event_type = {event_type}) x
WHERE NOT (in_window AND passes_filters)
ORDER BY occurred_at DESC, source_key
LIMIT 10
