-- Every key an account is known by is a node, labelled with itself to start with.
CREATE TEMP TABLE graph_label AS
SELECT DISTINCT node, node AS label FROM (
    SELECT source_key AS node FROM core_account WHERE NOT is_deleted
    UNION SELECT account_key FROM core_person WHERE NOT is_deleted AND account_key IS NOT NULL
    UNION SELECT account_key FROM core_opportunity WHERE NOT is_deleted AND account_key IS NOT NULL
    UNION SELECT a FROM graph_edge
) nodes;
ALTER TABLE graph_label ADD PRIMARY KEY (node);
ANALYZE graph_label;
ANALYZE graph_edge;
