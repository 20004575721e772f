ANALYZE stitch_records;
