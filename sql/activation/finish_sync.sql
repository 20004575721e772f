-- The run's outcome, and its match rate: audience members the destination holds afterwards over
-- the audience size (people with no lead, or refused, lower it).
UPDATE activation_sync_log l
SET added = %(added)s, removed = %(removed)s, skipped = %(skipped)s, api_calls = %(api_calls)s,
    finished_at = %(finished_at)s,
    match_rate = CASE WHEN l.audience_size > 0 THEN
        round((SELECT count(*) FROM activation_state s
               WHERE s.destination_id = l.destination_id AND s.audience_key = l.audience_key)::numeric
              / l.audience_size, 4) END
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND run_id = %(run_id)s
