-- A raw table's view picks up a column just added to its rows (sql/migrations/047).
SELECT refresh_raw_view(%(table)s)
