INSERT INTO segment_candidates (segment_id, person_id)
SELECT %(segment_id)s, q.person_id FROM ({members}) q JOIN stream_persons s ON s.person_id = q.person_id
