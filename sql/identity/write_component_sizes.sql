COPY stitch_component_size (component, records, identities) FROM STDIN WITH (FORMAT csv)
