"""Daily batch segmentation and buying groups: every sandbox, at the run's logical date."""

from airflow.sdk import dag, task

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import DEFAULT_ARGS, check_guardrails, profile_asset, run_time, segment_asset

_cfg = load_config()


def _evaluate_segments(task_id, sandbox, segments):
    @task(task_id=task_id, inlets=[profile_asset(sandbox.schema)],
          outlets=[segment_asset(s.id) for s in segments])
    def evaluate(*, outlet_events=None, **context) -> dict:
        from b2b_cdp.segments import evaluate_sandbox
        results = evaluate_sandbox(_cfg, sandbox, as_of=run_time(context), run_id=context["run_id"],
                                   segment_ids={s.id for s in segments})
        for segment in segments:
            outlet_events[segment_asset(segment.id)].extra = results[segment.id]
        return results

    return evaluate()


def _evaluate_buying_groups(sandbox):
    @task(task_id=f"buying_groups__{sandbox.schema}", inlets=[profile_asset(sandbox.schema)])
    def buying_groups(**context) -> dict:
        from b2b_cdp.buying_groups import evaluate_sandbox
        return evaluate_sandbox(_cfg, sandbox, as_of=run_time(context), run_id=context["run_id"])

    return buying_groups()


@dag(dag_id="segmentation_daily", schedule="@daily", catchup=False, default_args=DEFAULT_ARGS,
     tags=["cdp", "segmentation"])
def segmentation_daily():
    """
    ### Daily batch segmentation and buying groups

    Evaluates the segments declared in the configuration (compiled to set-based SQL) once a day,
    as B2B multi-entity segments are, at the run's logical date (never the wall clock), then forms
    and scores the buying groups of each solution interest, then evaluates the segments that read
    buying groups. Membership keeps its history (entered/exited); each segment emits an asset event
    with its counts, which triggers the activation DAGs.
    """

    gate = check_guardrails()
    readers = _cfg.segments_reading_buying_groups()
    for sandbox in _cfg.sandboxes():
        batch = [s for s in _cfg.segments if _cfg.sandbox_of(s) == sandbox and s.mode == "batch"]
        before = [s for s in batch if s.id not in readers]
        after = [s for s in batch if s.id in readers]
        has_groups = any(_cfg.sandbox_of(si) == sandbox for si in _cfg.buying_groups.solution_interests)
        upstream = gate
        if before:
            upstream = upstream >> _evaluate_segments(f"evaluate__{sandbox.schema}", sandbox, before)
        if has_groups:
            upstream = upstream >> _evaluate_buying_groups(sandbox)
        if after:
            upstream >> _evaluate_segments(f"evaluate_after_buying_groups__{sandbox.schema}", sandbox, after)


segmentation_daily()
