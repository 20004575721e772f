p.{column} {comparison}
