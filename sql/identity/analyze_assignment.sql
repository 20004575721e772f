-- Temporary tables are never analysed by autovacuum: the id steps below join them to the graph.
ANALYZE stitch_prior;
ANALYZE stitch_assignment;
