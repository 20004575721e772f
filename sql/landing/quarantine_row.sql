-- Move one refused row out of the lake into quarantine, with its reason, in one statement.
WITH moved AS (
    DELETE FROM {table}
    WHERE _batch_id = %(batch_id)s AND _source_key IS NOT DISTINCT FROM %(source_key)s
    RETURNING _source_key, _instance, _batch_id, _extracted_at, _record
)
INSERT INTO raw_quarantine (raw_table, _source_key, _instance, _batch_id, _extracted_at, _record, reason)
SELECT %(raw_table)s, _source_key, _instance, _batch_id, _extracted_at, _record, %(reason)s FROM moved
