-- Who qualifies for each segment of the layer being evaluated (refilled layer by layer).
CREATE TEMP TABLE segment_qualifying (segment_id text NOT NULL, person_id text NOT NULL) ON COMMIT DROP
