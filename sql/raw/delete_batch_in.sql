DELETE FROM {schema}.{table} WHERE _batch_id = %(batch_id)s
