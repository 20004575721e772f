p.person_id IN (SELECT f.person_id FROM segment_event_facts f WHERE f.{column} {comparison})
