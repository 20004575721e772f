"""The trigger-form Params: which DAG has which, with their defaults and types, how each is read
(sandbox selection, segment selection, window_end), and that every DAG's doc mentions them."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import yaml

SANDBOXES = ["all", "bodea/prod"]
MARKETO_BACKFILLS = ["ingest_backfill__marketo_111_aaa_111", "ingest_backfill__marketo_222_bbb_222"]
RECENT_VISITORS = {"id": "recent_visitors", "name": "Recent visitors", "platform_instance": "bodea",
                   "sandbox": "prod", "mode": "streaming",
                   "where": {"event": {"type": "Visit Webpage", "within": {"hours": 1}}}}


@pytest.fixture(scope="module")
def dags():
    """The DAG folder parsed on the shipped configuration plus one streaming segment, so that
    segmentation_streaming exists too."""
    import os
    import tempfile
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    from b2b_cdp.config import DEFAULT_CONFIG_PATH

    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append(RECENT_VISITORS)
    path = Path(tempfile.mkdtemp(prefix="cdp-params-")) / "cdp.yaml"
    path.write_text(yaml.safe_dump(raw))
    saved = os.environ.get("CDP_CONFIG")
    os.environ["CDP_CONFIG"] = str(path)
    try:
        bag = DagBag(dag_folder="dags")
    finally:
        if saved is None:
            del os.environ["CDP_CONFIG"]
        else:
            os.environ["CDP_CONFIG"] = saved
    assert bag.import_errors == {}
    return bag.dags


def _param(dag, name):
    return dag.params.get_param(name)


def test_every_dag_has_a_doc(dags):
    for dag_id, dag in dags.items():
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, dag_id


def test_each_param_is_mentioned_in_its_dag_doc(dags):
    for dag_id, dag in dags.items():
        for name in dag.params:
            assert f"`{name}`" in dag.doc_md, (dag_id, name)


def test_which_dag_has_which_params(dags):
    expected = {"segmentation_daily": {"sandbox", "segments"}, "segmentation_streaming": {"sandbox"},
                "identity_stitching": {"sandbox"}, **{d: {"window_end"} for d in MARKETO_BACKFILLS}}
    for dag_id, dag in dags.items():
        if dag_id.startswith("activate__"):
            assert set(dag.params) == {"dry_run"}, dag_id
        else:
            assert set(dag.params) == expected.get(dag_id, set()), dag_id


def test_sandbox_param_default_and_choices(dags):
    for dag_id in ("segmentation_daily", "segmentation_streaming", "identity_stitching"):
        param = _param(dags[dag_id], "sandbox")
        assert param.value == "all", dag_id
        assert param.schema["type"] == "string" and param.schema["enum"] == SANDBOXES, dag_id
        assert param.description, dag_id


def test_segments_param_default_and_type(dags):
    param = _param(dags["segmentation_daily"], "segments")
    assert param.value == []
    assert param.schema["type"] == "array" and param.schema["items"] == {"type": "string"}
    assert param.schema["examples"] == ["high_value_new_product_visitors"]   # batch segments only


def test_window_end_param_default_and_format(dags):
    for dag_id in MARKETO_BACKFILLS:
        param = _param(dags[dag_id], "window_end")
        assert param.value is None, dag_id
        assert param.schema["type"] == ["null", "string"] and param.schema["format"] == "date-time", dag_id
        assert param.resolve("2026-01-31T00:00:00+00:00") == "2026-01-31T00:00:00+00:00"
        with pytest.raises(Exception, match="is not a 'date-time'"):
            param.resolve("last tuesday")


def test_trigger_form_refuses_an_unknown_sandbox(dags):
    with pytest.raises(Exception, match="is not one of"):
        _param(dags["identity_stitching"], "sandbox").resolve("bodea/nope")


def test_after_a_skip_buying_groups_and_later_segments_still_run(dags):
    daily = dags["segmentation_daily"]
    for task in daily.tasks:
        if task.task_id != "check_guardrails":
            assert task.trigger_rule == "none_failed", task.task_id


# ---------------------------------------------------------------------------- the tasks, no warehouse


def _context(**params):
    return {"params": params, "run_id": "manual__test", "logical_date": datetime(2026, 3, 1, tzinfo=timezone.utc)}


def _call(dag, task_id, **params):
    return dag.get_task(task_id).python_callable(outlet_events={}, **_context(**params))


def test_a_task_of_an_unselected_sandbox_skips(dags):
    from airflow.sdk.exceptions import AirflowSkipException

    from b2b_cdp.config import Sandbox
    from b2b_cdp.orchestration import skip_unless_sandbox_selected

    other = Sandbox(platform_instance="bodea", name="dev")
    with pytest.raises(AirflowSkipException, match="sandbox bodea/dev not selected .*sandbox=bodea/prod"):
        skip_unless_sandbox_selected({"params": {"sandbox": "bodea/prod"}}, other)
    skip_unless_sandbox_selected({"params": {"sandbox": "all"}}, other)
    skip_unless_sandbox_selected({"params": {"sandbox": "bodea/dev"}}, other)
    skip_unless_sandbox_selected({}, other)   # no params at all: every sandbox

    # Wired into every per-sandbox task (the selection is checked before any warehouse access).
    stub = {"identity_stitching": ["stitch__cdp_bodea_prod"],
            "segmentation_streaming": ["evaluate_streaming__cdp_bodea_prod"],
            "segmentation_daily": ["evaluate__cdp_bodea_prod", "buying_groups__cdp_bodea_prod"]}
    for dag_id, task_ids in stub.items():
        for task_id in task_ids:
            with pytest.raises(AirflowSkipException, match="not selected"):
                _call(dags[dag_id], task_id, sandbox="acme/prod")


def test_unknown_segment_ids_are_refused_by_name(dags):
    from b2b_cdp.orchestration import selected_segment_ids

    known = ["a", "b", "c"]
    assert selected_segment_ids({"params": {"segments": []}}, known) is None
    assert selected_segment_ids({"params": {}}, known) is None
    assert selected_segment_ids({"params": {"segments": ["b", "a"]}}, known) == {"a", "b"}
    with pytest.raises(ValueError, match=r"unknown segment id\(s\) in the `segments` param: nope, zzz"):
        selected_segment_ids({"params": {"segments": ["a", "zzz", "nope"]}}, known)
    with pytest.raises(ValueError, match=r"nope \(known: a, b, c\)"):
        selected_segment_ids({"params": {"segments": ["nope"]}}, iter(known))
    # In the DAG: a streaming segment is no batch segment either.
    with pytest.raises(ValueError, match="recent_visitors"):
        _call(dags["segmentation_daily"], "evaluate__cdp_bodea_prod", sandbox="all", segments=["recent_visitors"])


def test_parse_window_end():
    from b2b_cdp.orchestration import parse_window_end

    assert parse_window_end(None) is None and parse_window_end("") is None and parse_window_end("  ") is None
    assert parse_window_end("2026-01-31T12:00:00+02:00") == datetime(2026, 1, 31, 10, tzinfo=timezone.utc)
    assert parse_window_end("2026-01-31T12:00:00Z") == datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    naive = parse_window_end("2026-01-31T12:00:00")
    assert naive == datetime(2026, 1, 31, 12, tzinfo=timezone.utc) and naive.tzinfo is not None
    with pytest.raises(ValueError, match="window_end 'last tuesday' is not an ISO 8601 date-time"):
        parse_window_end("last tuesday")


def test_backfill_until_takes_window_end_else_the_run_time():
    from b2b_cdp.orchestration import backfill_until

    logical = datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert backfill_until(_context()) == logical
    assert backfill_until(_context(window_end=None)) == logical
    assert backfill_until(_context(window_end="2026-02-01T00:00:00+00:00")) == datetime(2026, 2, 1, tzinfo=timezone.utc)
    manual = {"params": {"window_end": None}, "logical_date": None,
              "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 2, tzinfo=timezone.utc))}
    assert backfill_until(manual) == datetime(2026, 3, 2, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="is after the run's point in time"):
        backfill_until(_context(window_end="2026-04-01T00:00:00+00:00"))
    with pytest.raises(ValueError, match="not an ISO 8601 date-time"):
        backfill_until(_context(window_end="soon"))


def test_the_marketo_bulk_backfill_runs_up_to_window_end(dags, monkeypatch):
    import b2b_cdp.backfill

    seen = {}

    def fake_backfill_object(source_id, obj, until):
        seen[obj] = until
        return SimpleNamespace()

    monkeypatch.setattr(b2b_cdp.backfill, "backfill_object", fake_backfill_object)
    monkeypatch.setattr("b2b_cdp.operators.asdict", lambda result: {})
    dag = dags["ingest_backfill__marketo_111_aaa_111"]
    dag.get_task("land_leads").execute(_context(window_end="2026-02-01T00:00:00+00:00"))
    dag.get_task("land_activities").execute(_context())
    assert seen == {"leads": datetime(2026, 2, 1, tzinfo=timezone.utc),
                    "activities": datetime(2026, 3, 1, tzinfo=timezone.utc)}
