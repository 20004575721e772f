p.person_id NOT IN (SELECT f.person_id FROM segment_event_facts f WHERE NOT (f.{column} {comparison}))
