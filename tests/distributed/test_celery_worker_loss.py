"""`make test-distributed`: the Bodea pipeline on the CeleryExecutor, with two workers and one of them
killed in the middle of a task.

The stack (scheduler, dag-processor, api-server, triggerer, two Celery workers) runs as separate
processes through b2b_cdp.localstack, on the machine's Redis (127.0.0.1:6379) and PostgreSQL
(127.0.0.1:5432, a fresh metadata database and a fresh warehouse database, dropped at the end).
DAG runs are triggered through the REST API in `make demo`'s order, at the scenario's clock.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from b2b_cdp import localstack
from b2b_cdp.airflow_api import AirflowApi

pytestmark = pytest.mark.distributed

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BODEA = PROJECT_ROOT / "include" / "scenarios" / "bodea.yaml"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_DB = 7              # a database of its own on the shared Redis, flushed before and after
KILLED_WORKER, SURVIVOR = "worker-1", "worker-2"

# What a plain `make demo` on Bodea reports (README; tests/e2e/test_bodea_demo.py).
DEMO_PROFILES = {"persons": 6, "accounts": 3, "excluded": 0}
DEMO_SEGMENTS = {"high_value_new_product_visitors": {"mode": "batch", "members": ["p2@townsend.com"]}}
DEMO_CHECKPOINTS = ("config_destination_mappings", "config_segments", "config_topology",
                    "landing__marketo_111_aaa_111", "landing__marketo_222_bbb_222", "landing__salesforce_crm1",
                    "landing__salesforce_crm2", "landing__web_events", "identity__cdp_bodea_prod",
                    "buying_groups__cdp_bodea_prod")


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory):
    import redis

    suffix = uuid.uuid4().hex[:8]
    metadata_db, warehouse_db = f"cdp_distributed_airflow_{suffix}", f"cdp_distributed_warehouse_{suffix}"
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    broker.flushdb()
    for name in (metadata_db, warehouse_db):
        localstack.create_database(POSTGRES_ADMIN, name)
    saved_env = dict(os.environ)
    os.environ["AIRFLOW_CONN_CDP_WAREHOUSE"] = f"postgresql://postgres@127.0.0.1:5432/{warehouse_db}"
    home = tmp_path_factory.mktemp("celery-stack")
    options = localstack.StackOptions(
        home=home, scenario=BODEA, port=localstack.free_port(), executor="CeleryExecutor",
        metadata_db=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{metadata_db}",
        broker_url=f"redis://127.0.0.1:6379/{REDIS_DB}", workers=2, worker_concurrency=1,
        clock_mode="frozen",
        airflow_config={
            # Only the runs the test triggers: no cron or asset-triggered runs at the wall clock.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # The DAG files do not change during the run: parse them once, leave the cores to the tasks.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1"})
    try:
        yield localstack.up(options)
    finally:
        localstack.down(home)
        for name in (metadata_db, warehouse_db):
            localstack.drop_database(POSTGRES_ADMIN, name)
        broker.flushdb()
        os.environ.clear()
        os.environ.update(saved_env)


def stages(dag_ids: set[str]) -> list[list[str]]:
    """`make demo`'s order (b2b_cdp.demo.run_dags): each source's first load, stitching, the daily
    segmentation, then activation. The first loads are independent, so they run side by side."""
    from b2b_cdp.config import load_config

    cfg = load_config()
    first_loads = [f"ingest_backfill__{s.id}" if f"ingest_backfill__{s.id}" in dag_ids
                   else f"ingest_incremental__{s.id}" for s in cfg.sources]
    return [first_loads, ["identity_stitching"], ["segmentation_daily"],
            [f"activate__{d.id}" for d in cfg.destinations]]


class WorkerKiller:
    """Kills worker-1 (SIGKILL to its process groups, as if its machine died) while it runs a task
    that may be retried. With one slot per worker, that task is all the worker holds."""

    def __init__(self, api: AirflowApi, home: Path):
        self.api, self.home, self.victim = api, home, None

    def __call__(self) -> None:
        if self.victim is not None:
            return
        running = [ti for ti in self.api.task_instances(state="running") if ti["hostname"] == KILLED_WORKER]
        if running and all(ti["max_tries"] > 0 for ti in running):
            localstack.stop_processes(self.home, [KILLED_WORKER], grace=0)
            self.victim = running[0]


def assert_stack_alive(home: Path, killed: set[str]) -> None:
    """Fail at once, with the log to read, when a component the test did not kill has exited."""
    expected = {*localstack.SERVICES, localstack.EMULATORS, KILLED_WORKER, SURVIVOR} - killed
    for name in sorted(expected - set(localstack.running_processes(home))):
        log = localstack.log_path(home, name)
        raise AssertionError(f"{name} exited; the end of {log}:\n{log.read_text()[-3000:]}")


def test_the_pipeline_converges_when_a_worker_dies_mid_task(celery_stack):
    started = time.monotonic()
    api = AirflowApi(celery_stack.api_url, celery_stack.username, celery_stack.password)
    clock = yaml.safe_load(BODEA.read_text())["clock"]
    deadline = time.monotonic() + 120
    # Each DAG file's DAGs appear together (ingest.py holds every backfill and sync), so a plan whose
    # DAGs are all parsed is the final plan.
    while True:
        dag_ids = api.dag_ids()
        plan = stages(dag_ids)
        if {dag_id for stage in plan for dag_id in stage} <= dag_ids:
            break
        assert time.monotonic() < deadline, f"DAGs not parsed within 120s: {sorted(dag_ids)}"
        time.sleep(2)

    killer = WorkerKiller(api, celery_stack.home)
    run_ids: dict[str, str] = {}
    timings = {}
    for number, stage in enumerate(plan):
        stage_started = time.monotonic()
        runs = {}
        for dag_id in stage:
            api.unpause(dag_id)
            runs[dag_id] = api.trigger(dag_id, clock)

        def poll(first_stage=number == 0):
            if first_stage:   # the worker dies during the first stage, the busiest one
                killer()
            assert_stack_alive(celery_stack.home, {KILLED_WORKER} if killer.victim else set())

        states = api.wait_for_runs(runs, timeout=420, on_poll=poll)
        assert states == {dag_id: "success" for dag_id in stage}, states
        run_ids.update(runs)
        timings[", ".join(stage)] = round(time.monotonic() - stage_started, 1)

    # The killed task ran again, on the surviving worker, and its run still succeeded.
    assert killer.victim is not None, "no task ever ran on worker-1"
    assert KILLED_WORKER not in localstack.running_processes(celery_stack.home)
    tries = api.tries(killer.victim)
    assert len(tries) >= 2 and tries[0]["hostname"] == KILLED_WORKER, tries
    assert tries[0]["state"] in ("failed", "up_for_retry"), tries
    assert (tries[-1]["state"], tries[-1]["hostname"]) == ("success", SURVIVOR), tries

    # The warehouse and the destinations hold what a plain demo run leaves.
    from b2b_cdp.demo import build_report

    report = build_report(BODEA, datetime.fromisoformat(clock.replace("Z", "+00:00")), run_ids)
    assert report["profiles"] == DEMO_PROFILES
    assert report["segments"] == DEMO_SEGMENTS
    for destination in ("marketo_111_aaa_111", "marketo_222_bbb_222"):
        got = report["destinations"][destination]
        assert (got["members"], got["added"], got["removed"]) == (["p2@townsend.com"], 1, 0), got
    assert report["checkpoints"] == {name: {"success": True} for name in DEMO_CHECKPOINTS}
    print(f"\nkilled {killer.victim['dag_id']}.{killer.victim['task_id']} on {KILLED_WORKER}; "
          f"stages {timings}; pipeline {time.monotonic() - started:.0f}s")
