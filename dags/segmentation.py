"""Segmentation: the daily batch (segments, buying groups) at the run's logical date, and the
streaming pass that re-evaluates people+event segments whenever profiles change."""

from airflow.sdk import AssetAny, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from b2b_cdp.config import load_config
from b2b_cdp.orchestration import (DEFAULT_ARGS, buying_group_asset, check_guardrails, profile_asset, run_time,
                                   sandbox_param, segment_asset, segments_param, selected_segment_ids,
                                   skip_unless_sandbox_selected, streaming_changes_alias)

_cfg = load_config()

# After a per-sandbox task skipped (nothing of its own selected), the next stage still runs: buying
# groups are formed whatever segments the run selected. A failure upstream still stops it.
_AFTER_SKIPS = "none_failed"
_BATCH_IDS = [s.id for s in _cfg.segments if s.mode == "batch"]


def _evaluate_segments(task_id, sandbox, segments):
    @task(task_id=task_id, inlets=[profile_asset(sandbox.schema)],
          outlets=[segment_asset(s.id) for s in segments], trigger_rule=_AFTER_SKIPS)
    def evaluate(*, outlet_events=None, **context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from b2b_cdp.segments import evaluate_sandbox
        skip_unless_sandbox_selected(context, sandbox)
        chosen = selected_segment_ids(context, _BATCH_IDS)
        ids = {s.id for s in segments if chosen is None or s.id in chosen}
        if not ids:
            raise AirflowSkipException(f"none of {', '.join(s.id for s in segments)} selected "
                                       f"(this run: segments={sorted(chosen or ())})")
        results = evaluate_sandbox(_cfg, sandbox, as_of=run_time(context), run_id=context["run_id"],
                                   segment_ids=ids)
        for segment in segments:
            if segment.id in results:
                outlet_events[segment_asset(segment.id)].extra = results[segment.id]
        return results

    return evaluate()


def _evaluate_buying_groups(sandbox):
    @task(task_id=f"buying_groups__{sandbox.schema}", inlets=[profile_asset(sandbox.schema)],
          trigger_rule=_AFTER_SKIPS)
    def buying_groups(**context) -> dict:
        from b2b_cdp.buying_groups import evaluate_sandbox
        skip_unless_sandbox_selected(context, sandbox)
        return evaluate_sandbox(_cfg, sandbox, as_of=run_time(context), run_id=context["run_id"])

    interests = [si.id for si in _cfg.buying_groups.solution_interests if _cfg.sandbox_of(si) == sandbox]

    @task(task_id=f"check_buying_groups__{sandbox.schema}", outlets=[buying_group_asset(i) for i in interests],
          trigger_rule=_AFTER_SKIPS)
    def check(formed: dict, *, outlet_events=None, **context) -> dict:
        from b2b_cdp.buying_groups import check_results
        skip_unless_sandbox_selected(context, sandbox)
        outcome = check_results(_cfg, sandbox, context["run_id"])
        if not outcome.success:
            raise ValueError(f"buying-group checkpoint failed: {outcome.violations}")
        for interest in interests:
            outlet_events[buying_group_asset(interest)].extra = formed["solution_interests"][interest]
        return outcome.as_dict()

    formed = buying_groups()
    return formed, check(formed)


@dag(dag_id="segmentation_daily", schedule="@daily", catchup=False, default_args=DEFAULT_ARGS,
     tags=["cdp", "segmentation"],
     params={"sandbox": sandbox_param(_cfg), "segments": segments_param(_BATCH_IDS)})
def segmentation_daily():
    """
    ### Daily batch segmentation and buying groups

    Evaluates the segments declared in the configuration (compiled to set-based SQL) once a day,
    as B2B multi-entity segments are, at the run's logical date (never the wall clock), then forms
    and scores the buying groups of each solution interest and checks them (a GX checkpoint: scores
    within 0..100, one role per member and group, the complete flag consistent with the required
    roles, the groups exactly the account audience's accounts), then evaluates the segments that
    read buying groups. Person segments and account audiences (`audience: account`) keep their
    membership history (entered/exited); each segment emits an asset event with its counts, which
    triggers the activation DAGs, and each solution interest one with its groups' counts.

    The `sandbox` param ("all" by default, else `<platform_instance>/<name>`) runs one sandbox's
    tasks only, the others skip. The `segments` param (segment ids; empty by default, meaning every
    segment) evaluates those segments only, refusing unknown ids; buying groups are formed either way.
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
            formed, checked = _evaluate_buying_groups(sandbox)
            upstream >> formed
            upstream = checked
        if after:
            upstream >> _evaluate_segments(f"evaluate_after_buying_groups__{sandbox.schema}", sandbox, after)


segmentation_daily()


def _evaluate_streaming(sandbox, segments):
    # Events go out through an alias, so only a segment whose membership changed announces itself:
    # a pass every minute would otherwise trigger every activation DAG every minute.
    changes = streaming_changes_alias(sandbox.schema)

    @task(task_id=f"evaluate_streaming__{sandbox.schema}", outlets=[changes])
    def evaluate(*, outlet_events=None, **context) -> dict:
        from b2b_cdp.segments import evaluate_streaming
        skip_unless_sandbox_selected(context, sandbox)
        results = evaluate_streaming(_cfg, sandbox, run_id=context["run_id"])
        for segment in segments:
            counts = results.get(segment.id, {})
            if counts.get("entered") or counts.get("exited"):
                outlet_events[changes].add(segment_asset(segment.id), extra=counts)
        return results

    return evaluate()


_streaming = {sandbox: [s for s in _cfg.segments if _cfg.sandbox_of(s) == sandbox and s.mode == "streaming"]
              for sandbox in _cfg.sandboxes()}

if any(_streaming.values()):
    @dag(dag_id="segmentation_streaming", catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
         tags=["cdp", "segmentation", "streaming"], params={"sandbox": sandbox_param(_cfg)},
         # Whenever stitching rebuilds profiles (fresh events and records), and every minute so
         # members leave within the 2-minute target as their time windows slide past them (a pass
         # with nobody changed reads the current members only).
         schedule=AssetOrTimeSchedule(
             timetable=CronTriggerTimetable("* * * * *", timezone="UTC"),
             assets=AssetAny(*(profile_asset(sandbox.schema) for sandbox in _streaming))))
    def segmentation_streaming():
        """
        ### Streaming segmentation

        Re-evaluates the streaming segments (people and their events within windows under 24 h) for
        the people whose events or source records changed since the previous pass, and for the
        current members; a batch segment used inside one is read as of its latest daily run. Each
        segment emits an asset event with its entered/exited counts, which triggers activation.

        The `sandbox` param ("all" by default, else `<platform_instance>/<name>`) runs one sandbox's
        pass only, the others skip.
        """
        gate = check_guardrails()
        for sandbox, segments in _streaming.items():
            if segments:
                gate >> _evaluate_streaming(sandbox, segments)

    segmentation_streaming()
