COPY stitch_graph_rejected (record_key, namespace, value, reason) FROM STDIN WITH (FORMAT csv)
