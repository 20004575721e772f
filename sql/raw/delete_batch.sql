-- Replace a landing batch: a re-run task first removes what its previous attempt landed.
DELETE FROM {rows} WHERE _batch_id = %(batch_id)s
