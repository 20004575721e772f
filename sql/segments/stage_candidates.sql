DROP TABLE IF EXISTS segment_candidates;
CREATE TEMP TABLE segment_candidates (segment_id text NOT NULL, person_id text NOT NULL,
                                      PRIMARY KEY (segment_id, person_id));
