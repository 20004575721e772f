-- Stable person ids. A component keeps the id of the oldest earlier person lying wholly inside it
-- (a merge keeps the oldest); a component with none (new people, the parts of a split) gets a new id.
CREATE TEMP TABLE stitch_assignment ON COMMIT DROP AS
WITH whole AS (
    SELECT person_id, min(component) AS component
    FROM stitch_prior
    GROUP BY person_id
    HAVING count(DISTINCT component) = 1
), kept AS (
    SELECT DISTINCT ON (w.component) w.component, w.person_id
    FROM whole w JOIN identity_person p USING (person_id)
    ORDER BY w.component, p.created_at, w.person_id
)
SELECT c.component,
       coalesce(k.person_id, 'prs_' || substr(md5(%(run_id)s || ':' || min(c.record_key)), 1, 20)) AS person_id
FROM stitch_component c
LEFT JOIN kept k USING (component)
GROUP BY c.component, k.person_id
