-- Links the graph rules refused (unique namespaces, the identities-per-graph cap) leave the graph.
DELETE FROM identity_link l USING stitch_graph_rejected g
WHERE l.record_key = g.record_key AND l.namespace = g.namespace AND l.value = g.value;
