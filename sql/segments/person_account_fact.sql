coalesce(pa.{column}, false)
