-- Bulk files go to the lake set-based: the CSV is COPYed as is into a staging table (one text
-- column per CSV column), then each row becomes one raw record.
INSERT INTO {table} (_source_key, _instance, _batch_id, _extracted_at, _record)
SELECT t.{key_column} || %(key_suffix)s, %(instance)s, %(batch_id)s, %(extracted_at)s, to_jsonb(t)
FROM {staging} t
