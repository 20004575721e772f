-- A layer's memberships at %(as_of)s, in one statement: the memberships of those who no longer
-- qualify closed (a streaming pass closes only among the people it re-evaluated), newcomers
-- opened; current members stay as they are. Every sub-statement sees the memberships as they were,
-- so a segment's count after is open_before - exited + entered.
WITH exited AS (
    UPDATE audience_membership m
    SET exited_at = %(as_of)s
    WHERE m.segment_id = ANY(%(segment_ids)s::text[]) AND m.exited_at IS NULL {exit_scope}
      AND NOT EXISTS (SELECT 1 FROM segment_qualifying q
                      WHERE q.segment_id = m.segment_id AND q.person_id = m.person_id)
    RETURNING m.segment_id
), entered AS (
    INSERT INTO audience_membership (segment_id, person_id, entered_at)
    SELECT q.segment_id, q.person_id, %(as_of)s
    FROM segment_qualifying q
    WHERE NOT EXISTS (SELECT 1 FROM audience_membership m
                      WHERE m.segment_id = ANY(%(segment_ids)s::text[])
                        AND m.segment_id = q.segment_id AND m.person_id = q.person_id AND m.exited_at IS NULL)
    -- In key order, the index entries of a first run's millions of rows go in page by page.
    ORDER BY q.segment_id, q.person_id
    RETURNING segment_id
), open_before AS (
    SELECT segment_id, count(*) AS n FROM audience_membership
    WHERE segment_id = ANY(%(segment_ids)s::text[]) AND exited_at IS NULL GROUP BY segment_id
), exits AS (
    SELECT segment_id, count(*) AS n FROM exited GROUP BY segment_id
), entries AS (
    SELECT segment_id, count(*) AS n FROM entered GROUP BY segment_id
)
SELECT s.segment_id, coalesce(b.n, 0), coalesce(x.n, 0), coalesce(i.n, 0)
FROM unnest(%(segment_ids)s::text[]) s(segment_id)
LEFT JOIN open_before b ON b.segment_id = s.segment_id
LEFT JOIN exits x ON x.segment_id = s.segment_id
LEFT JOIN entries i ON i.segment_id = s.segment_id
