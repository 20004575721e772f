SELECT DISTINCT ("id")::integer AS id
FROM raw_marketo_activity_types
WHERE _instance = %(instance)s
ORDER BY id
