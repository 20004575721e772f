(SELECT {aggregate} FROM profile_opportunity o WHERE o.account_id = a.account_id AND {opportunity_filter}) {comparison}
