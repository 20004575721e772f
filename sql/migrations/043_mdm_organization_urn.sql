-- MDM drops may carry each golden record's LinkedIn organization URN (an optional column of the
-- cross-reference file). The column exists whether or not a drop had it yet, so normalisation can
-- read it; a drop landed with it before this migration already added it.
ALTER TABLE raw_mdm_crossref ADD COLUMN IF NOT EXISTS linkedin_organization_urn text;

-- Who wrote a URN: the source whose drops it came from, or NULL for a row a user inserted by hand,
-- which the pipeline never updates or withdraws.
ALTER TABLE activation_organization_urn ADD COLUMN source_id text;
