a.{column} {comparison}
