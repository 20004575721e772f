-- Copy one landed batch into another sandbox fed by the same source (sandboxes never share tables).
INSERT INTO {rows} ({columns}) SELECT {columns} FROM {source_schema}.{rows} WHERE _batch_id = %(batch_id)s
