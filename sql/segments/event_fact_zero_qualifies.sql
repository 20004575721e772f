NOT EXISTS (SELECT 1 FROM segment_event_facts f WHERE f.person_id = p.person_id AND NOT (f.{column} {comparison}))
