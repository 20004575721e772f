-- Every record of every person this run touches (stitch_touched), with the component it now falls
-- in (NULL: it left the graph, e.g. deleted at its source).
CREATE TEMP TABLE stitch_prior ON COMMIT DROP AS
SELECT t.record_key, t.person_id, c.component
FROM stitch_touched t
LEFT JOIN stitch_component c USING (record_key)
