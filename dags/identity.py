"""Identity stitching: runs whenever a source's core records change (asset-triggered)."""

from airflow.sdk import AssetAny, dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import DEFAULT_ARGS, check_guardrails, core_asset, profile_asset

_cfg = load_config()


@dag(dag_id="identity_stitching", schedule=AssetAny(*(core_asset(s.id) for s in _cfg.sources)),
     catchup=False, default_args=DEFAULT_ARGS, tags=["cdp", "identity"])
def identity_stitching():
    """
    ### Identity stitching and profiles

    Per sandbox: people are stitched across Marketo instances and CRMs by normalised email and CRM
    record; accounts across CRMs by the MDM cross-references. Rebuilds person and account profiles
    (opportunity roll-ups across every CRM, each deal counted once) and announces `cdp.profile.<schema>`.
    """

    gate = check_guardrails()
    for sandbox in _cfg.sandboxes():
        @task(task_id=f"stitch__{sandbox.schema}", outlets=[profile_asset(sandbox.schema)])
        def stitch(sandbox=sandbox, **context) -> dict:
            from b2b_cdp.identity import stitch as stitch_sandbox
            return stitch_sandbox(sandbox, context["run_id"])

        gate >> stitch()


identity_stitching()
