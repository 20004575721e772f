-- Optional fallback (identity.account_domain_fallback): accounts no MDM cross-reference groups
-- are joined on their website's normalised domain (scheme, "www." and path dropped).
INSERT INTO graph_edge (a, b)
SELECT key, 'domain:' || domain FROM (
    SELECT c.source_key AS key,
           lower(regexp_replace(btrim(c.website), '^([a-z]+://)?(www\.)?([^/:?#]+).*$', '\3', 'i')) AS domain
    FROM core_account c
    WHERE NOT c.is_deleted AND nullif(btrim(c.website), '') IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM core_account_xref x
                      WHERE x.account_key IN (c.source_key, c.crm_key))
) d
WHERE domain <> '';
