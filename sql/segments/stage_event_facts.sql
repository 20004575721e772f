-- One scan of the events in the widest window of a pass: per person, one count per event condition
-- of its segments (columns e0, e1, ...: count(*) FILTER (WHERE ...), values bound). Events are
-- counted per source record first and the counts then summed per person: the join to persons then
-- reads one row per record, not one per event. Text fields that conditions match by pattern come
-- lower-cased once per event (url__lower, ...); the innermost query is kept apart (OFFSET 0) since,
-- flattened, every condition would lower-case the text again. It passes up only the columns the
-- counts read (the fields compared as they are, and the lower-cased ones).
CREATE TEMP TABLE segment_event_facts ON COMMIT DROP AS
SELECT m.person_id, {sums}
FROM (SELECT e.person_key, {columns}
      FROM (SELECT e.person_key, e.event_type, e.occurred_at {fields}
            FROM core_event e
            WHERE e.event_type = ANY(%(event_types)s::text[])
              AND e.occurred_at > %(window_start)s
              AND e.occurred_at <= %(as_of)s
              {record_filter}
            OFFSET 0) e
      GROUP BY e.person_key) k
JOIN identity_record_person m ON m.record_key = k.person_key
GROUP BY m.person_id
