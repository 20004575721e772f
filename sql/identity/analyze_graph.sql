-- Fresh statistics for the next run's planner after a full run (the graph tables change in bulk).
ANALYZE identity_link;
ANALYZE identity_record_person;
ANALYZE identity_person;
