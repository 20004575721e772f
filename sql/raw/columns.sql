-- A raw table's writable columns (the source fields it has seen and the batch columns), in order:
-- those of the table holding its rows.
SELECT column_name
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %(rows)s AND is_generated = 'NEVER'
ORDER BY ordinal_position
