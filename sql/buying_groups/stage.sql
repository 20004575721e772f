-- One evaluation's work tables: each solution interest's groups (one per account of its account
-- audience), its template's roles, and each person's role.
DROP TABLE IF EXISTS bg_account, bg_role, bg_assignment;
CREATE TEMP TABLE bg_account (group_id text PRIMARY KEY, solution_interest text NOT NULL,
                              account_id text NOT NULL, template_id text NOT NULL);
CREATE TEMP TABLE bg_role (solution_interest text NOT NULL, role text NOT NULL, priority integer NOT NULL,
                           weight integer NOT NULL, required_count integer NOT NULL,
                           required_for_completeness boolean NOT NULL,
                           PRIMARY KEY (solution_interest, role));
CREATE TEMP TABLE bg_assignment (group_id text NOT NULL, person_id text NOT NULL, role text NOT NULL,
                                 PRIMARY KEY (group_id, person_id));
