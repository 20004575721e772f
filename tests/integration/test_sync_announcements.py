"""An incremental sync runs every minute; only a run that brought something new announces the
source's core asset, so identity stitching is not run for nothing once a minute per source."""

from datetime import datetime, timezone

import pytest

from b2b_cdp import ingest, warehouse
from b2b_cdp.config import load_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SOURCE = "marketo_111_aaa_111"


@pytest.fixture(scope="module")
def normalize_task():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder="dags")
    task = bag.dags[f"ingest_incremental__{SOURCE}"].get_task("normalize_to_core")
    assert [outlet.name for outlet in task.outlets] == [f"cdp.core.{SOURCE}"]
    return task.python_callable


def test_normalisation_counts_only_batches_that_held_rows(clean_sandboxes):
    cfg = load_config()
    assert ingest.normalize(SOURCE) == 0
    ingest.land(cfg, SOURCE, "raw_marketo_activities", "activities", "empty-1", NOW, [])
    assert ingest.normalize(SOURCE) == 0
    with warehouse.connect(clean_sandboxes[0]) as conn:   # the empty batch is marked all the same
        assert conn.execute("SELECT count(*) FROM ops_ingest_batch WHERE normalized_at IS NULL").fetchone() == (0,)
    ingest.land(cfg, SOURCE, "raw_marketo_leads", "leads", "full-1", NOW, [{"id": 1, "email": "a@x.com"}])
    ingest.land(cfg, SOURCE, "raw_marketo_activities", "activities", "empty-2", NOW, [])
    assert ingest.normalize(SOURCE) == 1


def test_the_normalise_task_skips_when_nothing_new_landed(clean_sandboxes, normalize_task):
    from airflow.sdk.exceptions import AirflowSkipException

    cfg = load_config()
    ingest.land(cfg, SOURCE, "raw_marketo_activities", "activities", "empty-1", NOW, [])
    with pytest.raises(AirflowSkipException, match="nothing to announce"):
        normalize_task()
    ingest.land(cfg, SOURCE, "raw_marketo_leads", "leads", "full-1", NOW, [{"id": 1, "email": "a@x.com"}])
    assert normalize_task() == 1
    with warehouse.connect(clean_sandboxes[0]) as conn:
        assert conn.execute("SELECT email FROM core_person").fetchall() == [("a@x.com",)]
