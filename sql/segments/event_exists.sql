EXISTS (SELECT 1 FROM profile_event e
        WHERE e.person_id = p.person_id AND e.event_type = {event_type}
          AND e.occurred_at > %(as_of)s - make_interval(hours => {window_hours}::int)
          AND e.occurred_at <= %(as_of)s AND {event_filter})
