COPY stitch_component (record_key, component) FROM STDIN WITH (FORMAT csv)
