INSERT INTO segment_candidates (segment_id, person_id)
SELECT %(segment_id)s, person_id FROM ({members}) q
