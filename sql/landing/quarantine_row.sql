-- Move one refused row out of the lake into quarantine, with its reason, in one statement; the
-- row's source fields are kept whole (as jsonb, whatever columns its table has). The row is found
-- through the lake's view ({table}) and removed from the table holding it ({rows}).
WITH moved AS (
    DELETE FROM {rows} r
    USING {table} v
    WHERE v._batch = (SELECT batch_no FROM raw_batch WHERE batch_id = %(batch_id)s)   -- the batch index
      AND v._source_key IS NOT DISTINCT FROM %(source_key)s AND r.ctid = v._ctid
    RETURNING v.*
)
INSERT INTO raw_quarantine (raw_table, _source_key, _instance, _batch_id, _extracted_at, _record, reason)
SELECT %(raw_table)s, m._source_key, m._instance, m._batch_id, b.extracted_at,
       jsonb_strip_nulls(to_jsonb(m)) - ARRAY['_source_key', '_ctid', '_batch', '_instance', '_batch_id'],
       %(reason)s
FROM moved m JOIN ops_ingest_batch b ON b.batch_id = m._batch_id
