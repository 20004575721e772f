"""Streaming segments: a pass re-evaluates only people whose events or records changed (and the
current members, whose windows slide), entering and exiting them at the time of the pass."""

from collections import defaultdict
from datetime import timedelta

import pytest
import yaml

from b2b_cdp import identity, segments, warehouse
from b2b_cdp.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, load_config
from tests.integration.test_pipeline_stages import ingest_everything

P1_LEAD, P2_LEAD = "1001@111-AAA-111.Marketo", "1002@111-AAA-111.Marketo"


@pytest.fixture
def streaming_config(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw["segments"].append({
        "id": "new_product_visitors_last_hour", "name": "New product visitors, last hour",
        "platform_instance": "bodea", "sandbox": "prod", "mode": "streaming",
        "where": {"event": {"type": "Visit Webpage", "within": {"hours": 1},
                            "where": [{"field": "url", "op": "contains", "value": "new-product"}]}}})
    (tmp_path / "cdp.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CDP_CONFIG", str(tmp_path / "cdp.yaml"))
    return load_config()


def streaming_pass(run_id: str) -> tuple[dict, list[tuple[str, dict]]]:
    """segmentation_streaming's task for the sandbox, as the DAG parses it: its result and the asset
    events it added to its alias."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "segmentation.py"))
    assert bag.import_errors == {}
    task = bag.dags["segmentation_streaming"].get_task("evaluate_streaming__cdp_bodea_prod")
    added: list[tuple[str, dict]] = []

    class Alias:
        def add(self, asset, extra=None):
            added.append((asset.name, extra))

    events = defaultdict(Alias)
    result = task.python_callable(outlet_events=events, params={"sandbox": "all"}, run_id=run_id)
    assert set(events) <= {alias for alias in task.outlets}
    return result, added


def members(sandbox, segment_id):
    with warehouse.connect(sandbox) as conn:
        return [r[0] for r in conn.execute(
            "SELECT p.email FROM audience_membership m JOIN profile_person p USING (person_id) "
            "WHERE m.segment_id = %s AND m.exited_at IS NULL ORDER BY 1", (segment_id,)).fetchall()]


def test_a_landed_event_enters_its_person_and_the_sliding_window_lets_them_go(
        clean_sandboxes, bodea_fleet, streaming_config):
    sandbox, segment = clean_sandboxes[0], "new_product_visitors_last_hour"
    ingest_everything("run-1")
    identity.stitch(sandbox)
    # The first pass looks at everyone: Bodea's visits are days old, nobody qualifies.
    first = segments.evaluate_streaming(streaming_config, sandbox, run_id="s1")
    assert first[segment] == {"members": 0, "entered": 0, "exited": 0}
    with warehouse.connect(sandbox) as conn:
        conn.execute("""INSERT INTO core_event (source_key, instance, person_key, activity_type_id, event_type,
                                                occurred_at, primary_value, url, attributes, extracted_at)
                        VALUES ('live-1@111-AAA-111.Marketo', '111-AAA-111', %s, 1, 'Visit Webpage',
                                now() - interval '5 minutes', 'bodea.com/products/new-product',
                                'bodea.com/products/new-product', '{}', now())""", (P1_LEAD,))
    # The DAG's pass announces the change on the segment's asset.
    entered, announced = streaming_pass("s2")
    assert entered[segment] == {"members": 1, "entered": 1, "exited": 0}
    assert announced == [(f"cdp.audience.{segment}", {"members": 1, "entered": 1, "exited": 0})]
    assert members(sandbox, segment) == ["p1@townsend.com"]
    # Nothing changed: only the current member is looked at again, and stays; no asset event, so no
    # activation run is triggered by a pass that changed nothing.
    unchanged, announced = streaming_pass("s3")
    assert (unchanged[segment]["entered"], announced) == (0, [])
    # A visit whose landing committed after s3 read its clock, written (changed_at) before it: the
    # next pass still sees it.
    with warehouse.connect(sandbox) as conn:
        (clock,), = conn.execute("SELECT cursor FROM ops_sync_cursor WHERE source_id = 'segmentation'").fetchall()
        conn.execute("""INSERT INTO core_event (source_key, instance, person_key, activity_type_id, event_type,
                                                occurred_at, primary_value, url, attributes, extracted_at, changed_at)
                        VALUES ('live-2@111-AAA-111.Marketo', '111-AAA-111', %s, 1, 'Visit Webpage',
                                now() - interval '5 minutes', 'bodea.com/products/new-product',
                                'bodea.com/products/new-product', '{}', now(), %s::timestamptz - interval '30 seconds')""",
                     (P2_LEAD, clock))
    late = segments.evaluate_streaming(streaming_config, sandbox, run_id="s3b")
    assert late[segment] == {"members": 2, "entered": 1, "exited": 0}
    with warehouse.connect(sandbox) as conn:   # time passes: the visits fall out of the hour
        conn.execute("UPDATE core_event SET occurred_at = occurred_at - %s WHERE source_key LIKE 'live-%%'",
                     (timedelta(hours=2),))
    left = segments.evaluate_streaming(streaming_config, sandbox, run_id="s4")
    assert left[segment] == {"members": 0, "entered": 0, "exited": 2}
    # The batch segment was not touched by the streaming passes.
    with warehouse.connect(sandbox) as conn:
        assert conn.execute("SELECT count(*) FROM audience_evaluation "
                            "WHERE segment_id = 'high_value_new_product_visitors'").fetchone() == (0,)
