-- Filled from the component computation (COPY), read by the id assignment below.
CREATE TEMP TABLE stitch_component (record_key text PRIMARY KEY, component bigint NOT NULL) ON COMMIT DROP;
CREATE TEMP TABLE stitch_graph_rejected (record_key text, namespace text, value text, reason text) ON COMMIT DROP;
