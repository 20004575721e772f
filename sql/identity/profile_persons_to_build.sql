-- The persons whose profile this run rebuilds: those it recomputed or retired, and those whose
-- records (or deal roles) point at an account whose id changed.
CREATE TEMP TABLE stitch_persons ON COMMIT DROP AS
SELECT person_id FROM stitch_assignment
UNION
SELECT person_id FROM stitch_prior
UNION
SELECT m.person_id
FROM stitch_account_changed a
JOIN core_person p ON p.account_key = a.account_key
JOIN identity_record_person m ON m.record_key = p.source_key
UNION
SELECT m.person_id
FROM stitch_account_changed a
JOIN core_opportunity o ON o.account_key = a.account_key
JOIN core_opportunity_person r ON r.opportunity_key = o.source_key
JOIN identity_record_person m ON m.record_key = r.person_key;

ANALYZE stitch_persons;

-- Their records, read by every profile statement below (rather than the whole record -> person map
-- joined again each time).
CREATE TEMP TABLE stitch_person_records ON COMMIT DROP AS
SELECT m.person_id, m.record_key FROM identity_record_person m JOIN stitch_persons USING (person_id);

ANALYZE stitch_person_records;
