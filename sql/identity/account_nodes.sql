-- Every key an account is known by (CSV), sorted: a node's position is its rank in the server's
-- text order, so identity.py labels each component with the key SQL's min() would pick.
COPY (
SELECT node FROM (
    SELECT source_key AS node FROM core_account WHERE NOT is_deleted
    UNION SELECT account_key FROM core_person WHERE NOT is_deleted AND account_key IS NOT NULL
    UNION SELECT account_key FROM core_opportunity WHERE NOT is_deleted AND account_key IS NOT NULL
    UNION SELECT a FROM graph_edge
    UNION SELECT b FROM graph_edge
) nodes
ORDER BY node
) TO STDOUT WITH (FORMAT csv)
