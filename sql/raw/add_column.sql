-- A source field seen for the first time gets its own column (text, as every raw field).
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} text
