-- Temporary tables are never analysed by autovacuum: without statistics the planner guesses badly.
ANALYZE stitch_changed;
