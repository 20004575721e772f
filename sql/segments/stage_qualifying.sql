-- The members of a layer of person segments (none reads another of the layer) in one scan of the
-- profiles: each segment's condition is a CASE of the scan over `p`, its event facts (`f`) and its
-- person-account facts (`pa`), and a person yields one row per segment satisfied. Profiles over
-- the identity or event guardrails are left out. {scope} keeps a streaming pass to the people it
-- re-evaluates.
INSERT INTO segment_qualifying (segment_id, person_id)
SELECT q.segment_id, q.person_id
FROM (SELECT p.person_id, unnest(array_remove(ARRAY[{cases}]::text[], NULL)) AS segment_id
      FROM profile_person p {facts} {scope}
      WHERE p.excluded_reason IS NULL) q
