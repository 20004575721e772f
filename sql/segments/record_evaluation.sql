INSERT INTO audience_evaluation (segment_id, evaluated_at, mode, definition_hash, members, entered, exited, run_id,
                                 excluded_profiles)
VALUES (%(segment_id)s, %(as_of)s, %(mode)s, %(definition_hash)s,
        (SELECT count(*) FROM audience_membership WHERE segment_id = %(segment_id)s AND exited_at IS NULL),
        %(entered)s, %(exited)s, %(run_id)s,
        (SELECT count(*) FROM profile_person WHERE excluded_reason IS NOT NULL))
ON CONFLICT (segment_id, evaluated_at) DO UPDATE
SET mode = EXCLUDED.mode, definition_hash = EXCLUDED.definition_hash, members = EXCLUDED.members,
    entered = audience_evaluation.entered + EXCLUDED.entered,
    exited = audience_evaluation.exited + EXCLUDED.exited, run_id = EXCLUDED.run_id,
    excluded_profiles = EXCLUDED.excluded_profiles
RETURNING members
