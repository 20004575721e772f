"""The stitching checkpoint: Great Expectations on the identity graph and the profiles just built.

No identity in two persons, no person over the identity limit, every profile traceable to source
records, account roll-ups equal to the sum of their opportunities. The facts are computed in the
warehouse (sql/identity/checks.sql); the checkpoint result is stored in ops_checkpoint_result.
"""

from __future__ import annotations

import logging

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox, load_config
from b2b_cdp.guardrails import CheckpointOutcome, build_data_docs, gx_context

log = logging.getLogger(__name__)


def check_stitching(sandbox: Sandbox, run_id: str) -> CheckpointOutcome:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    from b2b_cdp.ops import record_checkpoints

    name = f"identity__{sandbox.schema}"
    with warehouse.connect(sandbox) as conn:
        with warehouse.run(conn, "identity/checks",
                           {"max_identities": load_config().identity.max_identities_per_graph}) as cur:
            facts = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
    context = gx_context()
    batch = context.data_sources.add_pandas("identity").add_dataframe_asset(name) \
        .add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="violations", max_value=0))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": facts}, result_format={
        "result_format": "COMPLETE", "unexpected_index_column_names": ["rule"]})
    build_data_docs(context)
    outcome = CheckpointOutcome(name, result.success)
    examples = dict(zip(facts["rule"], zip(facts["violations"], facts["example"])))
    for check in result.results:
        for row in check.result.get("unexpected_index_list") or []:
            count, example = examples[row["rule"]]
            outcome.violations.append(f"{row['rule']}: {count} violation(s), e.g. {example}")
    record_checkpoints(sandbox, run_id, {name: outcome})
    log.info("Checkpoint %s: %s%s", name, "passed" if outcome.success else "FAILED ",
             "; ".join(outcome.violations))
    return outcome
