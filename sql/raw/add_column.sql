-- A source field seen for the first time gets its own column (text, as every raw field) in the
-- table of the lake's rows; sql/raw/refresh_view.sql then shows it in the lake's view.
ALTER TABLE {rows} ADD COLUMN IF NOT EXISTS {column} text
