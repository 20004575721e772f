ANALYZE stitch_component;
ANALYZE stitch_graph_rejected;
