LEFT JOIN segment_event_facts f ON f.person_id = p.person_id
