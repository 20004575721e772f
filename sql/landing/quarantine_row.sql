-- Move one refused row out of the lake into quarantine, with its reason, in one statement; the
-- row's source fields are kept whole (as jsonb, whatever columns its table has).
WITH moved AS (
    DELETE FROM {table} r
    WHERE _batch_id = %(batch_id)s AND _source_key IS NOT DISTINCT FROM %(source_key)s
    RETURNING r.*
)
INSERT INTO raw_quarantine (raw_table, _source_key, _instance, _batch_id, _extracted_at, _record, reason)
SELECT %(raw_table)s, m._source_key, m._instance, m._batch_id, b.extracted_at,
       jsonb_strip_nulls(to_jsonb(m)) - ARRAY['_source_key', '_ctid', '_instance', '_batch_id'],
       %(reason)s
FROM moved m JOIN ops_ingest_batch b ON b.batch_id = m._batch_id
