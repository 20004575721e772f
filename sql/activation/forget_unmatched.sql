-- Members no longer waiting for a lead (matched, or out of the segment) are forgotten.
DELETE FROM activation_unmatched
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s
  AND NOT (person_id = ANY (%(waiting)s::text[]))
