-- Identities are looked up by value and namespace together (the persons sharing a changed record's
-- identity, the persons an email identifies). With the value first the index sorts on a column of
-- many distinct values, not on five namespaces: a full stitching run builds it in half the time.
DROP INDEX IF EXISTS identity_link_namespace_value_idx;
CREATE INDEX identity_link_value_namespace_idx ON identity_link (value, namespace);
