-- A full run's graph edges, judged in identity.py (CSV), into the table reset_links emptied in this
-- transaction: written frozen, so the runs after it find every row visible without setting hint
-- bits on (and writing again) every page.
COPY identity_link (record_key, namespace, value, unique_scope, joins, seen_at) FROM STDIN WITH (FORMAT csv, FREEZE)
