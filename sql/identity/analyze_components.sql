ANALYZE stitch_component;
ANALYZE stitch_graph_rejected;
ANALYZE stitch_component_size;
