INSERT INTO identity_run (run_id, started_at, mode, changed, recomputed, persons, rules_hash)
VALUES (%(run_id)s, %(started_at)s, %(mode)s, %(changed)s, %(recomputed)s, %(persons)s, %(rules_hash)s)
ON CONFLICT (run_id) DO UPDATE
SET started_at = EXCLUDED.started_at, finished_at = clock_timestamp(), mode = EXCLUDED.mode,
    changed = EXCLUDED.changed, recomputed = EXCLUDED.recomputed, persons = EXCLUDED.persons,
    rules_hash = EXCLUDED.rules_hash
