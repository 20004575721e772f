-- The indexes reset_links dropped, built once over the links a full run wrote.
CREATE INDEX identity_link_record_key_idx ON identity_link (record_key);
CREATE INDEX identity_link_value_namespace_idx ON identity_link (value, namespace);
