-- The persons standing after this run that stood before, with their size (a re-formed id is live
-- again); a person standing as it was is not rewritten. Sizes come from the component
-- computation: its records, and the identities the graph kept on them.
UPDATE identity_person ip
SET records = s.records, identities = s.identities, retired_at = NULL, retired_reason = NULL
FROM stitch_assignment a
JOIN stitch_component_size s USING (component)
WHERE ip.person_id = a.person_id
  AND ((ip.records, ip.identities) IS DISTINCT FROM (s.records, s.identities)
       OR ip.retired_at IS NOT NULL OR ip.retired_reason IS NOT NULL)
