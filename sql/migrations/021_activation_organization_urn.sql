-- LinkedIn organization URNs known for accounts (e.g. from a company-match export), keyed by the
-- account id, its MDM id or any of its source keys. A company audience sends the URN along with
-- the account's name and website domain when one is known.

CREATE TABLE activation_organization_urn (
    account_key      text PRIMARY KEY,
    organization_urn text NOT NULL CHECK (organization_urn ~ '^urn:li:organization:[0-9]+$')
);
