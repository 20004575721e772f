-- Members' Marketo leads already known: a live lead record of the instance in the person's identity
-- graph (ingested from that very instance), the most recently updated when the graph holds several.
-- Marketo lead keys are `<lead id>@<munchkin id>.Marketo`.
SELECT DISTINCT ON (m.person_id) m.person_id, split_part(c.source_key, '@', 1)::bigint AS lead_id
FROM identity_record_person m
JOIN core_person c ON c.source_key = m.record_key
WHERE m.person_id = ANY(%(person_ids)s)
  AND c.system = 'Marketo' AND c.instance = %(instance)s AND c.record_type = 'lead' AND NOT c.is_deleted
ORDER BY m.person_id, c.updated_at DESC NULLS LAST, c.source_key DESC
