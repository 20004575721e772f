INSERT INTO audience_evaluation (segment_id, evaluated_at, mode, audience, definition_hash, members, entered, exited,
                                 run_id, excluded_profiles)
VALUES (%(segment_id)s, %(as_of)s, %(mode)s, %(audience)s, %(definition_hash)s, %(members)s, %(entered)s, %(exited)s,
        %(run_id)s, %(excluded_profiles)s)
ON CONFLICT (segment_id, evaluated_at) DO UPDATE
SET mode = EXCLUDED.mode, audience = EXCLUDED.audience, definition_hash = EXCLUDED.definition_hash,
    members = EXCLUDED.members, entered = audience_evaluation.entered + EXCLUDED.entered,
    exited = audience_evaluation.exited + EXCLUDED.exited, run_id = EXCLUDED.run_id,
    excluded_profiles = EXCLUDED.excluded_profiles
