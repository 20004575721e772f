"""Identity stitching: runs whenever a source's core records change (asset-triggered)."""

from airflow.sdk import AssetAny, dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import (DEFAULT_ARGS, check_guardrails, core_asset, profile_asset, sandbox_param,
                                   skip_unless_sandbox_selected)

_cfg = load_config()


@dag(dag_id="identity_stitching", schedule=AssetAny(*(core_asset(s.id) for s in _cfg.sources)),
     catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, tags=["cdp", "identity"], params={"sandbox": sandbox_param(_cfg)})
def identity_stitching():
    """
    ### Identity stitching and profiles

    Per sandbox: the identity graph (records and the identities they carry: email, ECID, Marketo
    lead, CRM contact/lead) under the linking rules, incrementally (records changed since the last
    run and the persons they touch), with stable person ids; accounts across CRMs by the MDM
    cross-references. Rebuilds the touched person profiles and the account profiles (roll-ups across
    every CRM, each deal counted once), runs the stitching checkpoint and announces
    `cdp.profile.<schema>`.

    The `sandbox` param ("all" by default, else `<platform_instance>/<name>`) stitches one sandbox
    only; the other sandboxes' tasks skip.
    """

    gate = check_guardrails()
    for sandbox in _cfg.sandboxes():
        @task(task_id=f"stitch__{sandbox.schema}")
        def stitch(sandbox=sandbox, **context) -> dict:
            from b2b_cdp.identity import stitch as stitch_sandbox
            skip_unless_sandbox_selected(context, sandbox)
            return stitch_sandbox(sandbox, context["run_id"])

        @task(task_id=f"check_stitching__{sandbox.schema}", outlets=[profile_asset(sandbox.schema)])
        def check(sandbox=sandbox, **context) -> dict:
            from b2b_cdp.identity_checks import check_stitching
            outcome = check_stitching(sandbox, context["run_id"])
            if not outcome.success:
                raise ValueError(f"stitching checkpoint failed: {outcome.violations}")
            return outcome.as_dict()

        gate >> stitch() >> check()


identity_stitching()
