-- Ids no component kept are retired: merged, split, or left with no live record. Driven from the
-- touched persons (a few in an incremental run), not from every person.
UPDATE identity_person ip
SET retired_at = clock_timestamp(),
    retired_reason = coalesce((SELECT min(l.event) FROM identity_person_lineage l
                               WHERE l.person_id = ip.person_id AND l.run_id = %(run_id)s), 'records deleted')
FROM (SELECT DISTINCT p.person_id
      FROM stitch_prior p
      WHERE NOT EXISTS (SELECT 1 FROM stitch_assignment a WHERE a.person_id = p.person_id)) gone
WHERE ip.person_id = gone.person_id
  AND ip.retired_at IS NULL
