-- One round of min-label propagation: each node takes the smallest label among its neighbours.
-- Repeated until no row changes, every node carries its component's smallest node.
UPDATE graph_label g
SET label = n.label
FROM (
    SELECT e.a AS node, min(l.label) AS label
    FROM graph_edge e JOIN graph_label l ON l.node = e.b
    GROUP BY e.a
) n
WHERE g.node = n.node AND n.label < g.label
