-- The indexes reset_links dropped, built once over the links a full run wrote.
ALTER TABLE identity_link ADD CONSTRAINT identity_link_pkey PRIMARY KEY (record_key, namespace, value);
CREATE INDEX identity_link_value_namespace_idx ON identity_link (value, namespace);
