coalesce(f.{column}, 0) {comparison}
