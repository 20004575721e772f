-- Ids no component kept are retired: merged, split, or left with no live record.
UPDATE identity_person ip
SET retired_at = clock_timestamp(),
    retired_reason = coalesce((SELECT min(l.event) FROM identity_person_lineage l
                               WHERE l.person_id = ip.person_id AND l.run_id = %(run_id)s), 'records deleted')
WHERE ip.retired_at IS NULL
  AND ip.person_id IN (SELECT person_id FROM stitch_prior)
  AND ip.person_id NOT IN (SELECT person_id FROM stitch_assignment)
