-- Fresh statistics for the next run's planner (the graph tables change in bulk).
ANALYZE identity_link;
ANALYZE identity_record_person;
ANALYZE identity_person;
