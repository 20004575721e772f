-- LinkedIn organization URNs from the MDM's latest drop, keyed by MDM id (export_account_rows finds
-- an account by it, whatever account id stitching gives the golden record). The latest drop is the
-- whole truth: URNs this source wrote that it no longer carries are withdrawn. Rows of other
-- writers (NULL source_id: inserted by hand) are neither replaced nor withdrawn. Only a drop not
-- normalised yet counts (with none, nothing changes).
WITH latest AS (
    SELECT r._batch_id AS batch_id
    FROM raw_mdm_crossref r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
    WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
    ORDER BY b.extracted_at DESC, b.loaded_at DESC
    LIMIT 1
)
-- Landing refused a drop giving one MDM id two URNs, and empty cells say nothing.
, carried AS (
    SELECT DISTINCT r."mdm_id", r."linkedin_organization_urn" AS organization_urn
    FROM raw_mdm_crossref r, latest
    WHERE r._batch_id = latest.batch_id AND r."linkedin_organization_urn" <> ''
)
, withdrawn AS (
    DELETE FROM activation_organization_urn o
    WHERE EXISTS (SELECT 1 FROM latest)
      AND o.source_id = %(source_id)s
      AND NOT EXISTS (SELECT 1 FROM carried c WHERE c.mdm_id = o.account_key)
)
INSERT INTO activation_organization_urn AS o (account_key, organization_urn, source_id)
SELECT c.mdm_id, c.organization_urn, %(source_id)s
FROM carried c
ON CONFLICT (account_key) DO UPDATE SET organization_urn = EXCLUDED.organization_urn
WHERE o.source_id = EXCLUDED.source_id
