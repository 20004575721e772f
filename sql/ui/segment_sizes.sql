-- Each segment's size after each of its latest evaluations, oldest first (the chart's points).
SELECT segment_id, evaluated_at, members, entered, exited
FROM (
    SELECT segment_id, evaluated_at, members, entered, exited,
           row_number() OVER (PARTITION BY segment_id ORDER BY evaluated_at DESC) AS recency
    FROM audience_evaluation
) recent
WHERE recency <= %(points)s
ORDER BY segment_id, evaluated_at
