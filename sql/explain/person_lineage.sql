-- Where a person id came from: the ids it absorbed (merge) or was split from (split), and where
-- those came from in turn ('from', by depth); and the ids this one handed records to ('to').
WITH RECURSIVE origin AS (
    SELECT l.person_id, l.successor_id, l.event, l.run_id, l.at, 1 AS depth
    FROM identity_person_lineage l
    WHERE l.successor_id = %(person_id)s AND l.person_id <> l.successor_id
    UNION
    SELECT l.person_id, l.successor_id, l.event, l.run_id, l.at, o.depth + 1
    FROM identity_person_lineage l
    JOIN origin o ON l.successor_id = o.person_id
    WHERE o.depth < 50 AND l.person_id <> l.successor_id
)
SELECT 'from' AS direction, person_id, successor_id, event, run_id, at, depth FROM origin
UNION ALL
SELECT 'to', person_id, successor_id, event, run_id, at, 1
FROM identity_person_lineage
WHERE person_id = %(person_id)s AND successor_id <> person_id
ORDER BY direction, depth, at, person_id, successor_id
