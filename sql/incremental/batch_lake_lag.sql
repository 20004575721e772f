-- Source change -> landed in the lake, per row of one batch, measured on the source's clock
-- (so a skew between the source and the warehouse does not distort it).
SELECT count(*),
       max(change_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_s),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_s),
       max(lag_s)
FROM (
    SELECT {change_field}::timestamptz AS change_at,
           extract(epoch FROM %(source_now)s - {change_field}::timestamptz) AS lag_s
    FROM {table}
    WHERE _batch_id = %(batch_id)s
) rows
