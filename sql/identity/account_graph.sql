-- Graph for account components: every key an account is known by is a node (Marketo company keys,
-- CRM account keys, keys that people and deals point at, MDM golden records). Edges: a Marketo
-- company and the CRM account it syncs with; an MDM golden record and each CRM account it groups.
-- identity.py finds the components (scipy); create_account_labels holds each node's label.
DROP TABLE IF EXISTS graph_edge;
CREATE TEMP TABLE graph_edge AS
SELECT source_key AS a, crm_key AS b FROM core_account WHERE NOT is_deleted AND crm_key IS NOT NULL AND crm_key <> source_key
UNION
SELECT account_key, 'mdm:' || mdm_id FROM core_account_xref;
