"""The stitching checkpoint: Great Expectations on the identity graph and the profiles just built.

No identity in two persons, no link recorded twice, no person over the identity limit, every
profile traceable to source records, account roll-ups equal to the sum of their opportunities. The
facts are computed in the warehouse (sql/identity/checks.sql); the checkpoint result is stored in
ops_checkpoint_result.
"""

from __future__ import annotations

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox, load_config
from b2b_cdp.guardrails import CheckpointOutcome, run_rule_checkpoint


def check_stitching(sandbox: Sandbox, run_id: str) -> CheckpointOutcome:
    import pandas as pd

    with warehouse.connect(sandbox) as conn:
        facts = pd.DataFrame(warehouse.fetch_dicts(conn, "identity/checks", {
            "max_identities": load_config().identity.max_identities_per_graph}))
    return run_rule_checkpoint(f"identity__{sandbox.schema}", sandbox, run_id, facts)
