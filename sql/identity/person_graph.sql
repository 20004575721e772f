-- Graph for person components: every live record is a node labelled with itself; each identity
-- links its records to the smallest record carrying it (a star per identity, both directions).
DROP TABLE IF EXISTS graph_edge;
DROP TABLE IF EXISTS graph_label;
CREATE TEMP TABLE graph_label AS
SELECT source_key AS node, source_key AS label FROM core_person WHERE NOT is_deleted;
ALTER TABLE graph_label ADD PRIMARY KEY (node);
CREATE TEMP TABLE graph_edge AS
WITH anchor AS (
    SELECT namespace, value, min(record_key) AS anchor FROM identity_link GROUP BY namespace, value
)
SELECT l.record_key AS a, an.anchor AS b
FROM identity_link l JOIN anchor an USING (namespace, value)
WHERE l.record_key <> an.anchor
UNION
SELECT an.anchor, l.record_key
FROM identity_link l JOIN anchor an USING (namespace, value)
WHERE l.record_key <> an.anchor;
CREATE INDEX ON graph_edge (a);
ANALYZE graph_label;
ANALYZE graph_edge;
