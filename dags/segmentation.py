"""Daily batch segmentation: every batch segment of every sandbox, at the run's logical date."""

from airflow.sdk import dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import DEFAULT_ARGS, check_guardrails, profile_asset, run_time, segment_asset

_cfg = load_config()


@dag(dag_id="segmentation_daily", schedule="@daily", catchup=False, default_args=DEFAULT_ARGS,
     tags=["cdp", "segmentation"])
def segmentation_daily():
    """
    ### Daily batch segmentation

    Evaluates the segments declared in the configuration (compiled to set-based SQL) once a day,
    as B2B multi-entity segments are, at the run's logical date (never the wall clock). Membership
    keeps its history (entered/exited); each segment emits an asset event with its counts, which
    triggers the activation DAGs.
    """

    gate = check_guardrails()
    for sandbox in _cfg.sandboxes():
        segments = [s for s in _cfg.segments if _cfg.sandbox_of(s) == sandbox and s.mode == "batch"]
        if not segments:
            continue

        @task(task_id=f"evaluate__{sandbox.schema}", inlets=[profile_asset(sandbox.schema)],
              outlets=[segment_asset(s.id) for s in segments])
        def evaluate(sandbox=sandbox, segments=segments, *, outlet_events=None, **context) -> dict:
            from b2b_cdp.segments import evaluate_sandbox
            results = evaluate_sandbox(_cfg, sandbox, as_of=run_time(context), run_id=context["run_id"])
            for segment in segments:
                outlet_events[segment_asset(segment.id)].extra = results[segment.id]
            return results

        gate >> evaluate()


segmentation_daily()
