-- Copy one landed batch into another sandbox fed by the same source (sandboxes never share tables);
-- the rows take the batch's number in this sandbox (sql/raw/begin_batch.sql).
INSERT INTO {rows} ({columns})
SELECT {columns} FROM {source_schema}.{rows}
WHERE _batch = (SELECT batch_no FROM {source_schema}.raw_batch WHERE batch_id = %(batch_id)s)
