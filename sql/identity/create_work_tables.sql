-- Filled from the component computation (COPY), read by the id assignment below. Unique by
-- construction, and read whole: no index to maintain while a full run writes millions of rows.
CREATE TEMP TABLE stitch_component (record_key text NOT NULL, component bigint NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE stitch_component_size (component bigint NOT NULL, records integer NOT NULL,
                                         identities integer NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE stitch_graph_rejected (record_key text, namespace text, value text, reason text) ON COMMIT DROP;
