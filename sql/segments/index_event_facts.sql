-- The event facts' key (a person has one row), and statistics for the joins that read them.
CREATE UNIQUE INDEX ON segment_event_facts (person_id);
ANALYZE segment_event_facts;
