"""The Airflow REST API as the UI uses it: a JWT from /auth/token, then /api/v2 calls. Used by
`make test-distributed` and bench/activation_latency.py to drive a `make up` stack."""

from __future__ import annotations

import time
from typing import Any

import requests

from b2b_cdp.http import HttpPolicy

FINISHED = {"success", "failed"}


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.policy = HttpPolicy(read_timeout=60.0)
        token = self._call("POST", "/auth/token", json={"username": username, "password": password})
        self.policy.session.headers["Authorization"] = f"Bearer {token['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> Any:
        def check(response: requests.Response) -> Any:
            if response.status_code >= 400:
                raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
            return response.json()

        return self.policy.request(method, self.base_url + path, check=check, **kwargs)

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self._call("GET", "/api/v2/dags", params={"limit": 100})["dags"]}

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})

    def runs(self, dag_id: str, **filters) -> list[dict]:
        """The DAG's runs, oldest first (filters as the API takes them, e.g. run_after_gte)."""
        params = {"limit": 100, "order_by": "run_after", **filters}
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def trigger(self, dag_id: str, logical_date: str) -> str:
        """Trigger a run as the UI's trigger form does; returns its run id."""
        return self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                          json={"logical_date": logical_date, "conf": {}})["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str = "~", run_id: str = "~", **filters) -> list[dict]:
        params = {"limit": 500, **filters}
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                          params=params)["task_instances"]

    def tries(self, ti: dict) -> list[dict]:
        """Every try of a task instance, oldest first."""
        path = f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"
        if ti["map_index"] >= 0:
            path += f"/{ti['map_index']}"
        return sorted(self._call("GET", path + "/tries")["task_instances"], key=lambda t: t["try_number"])

    def wait_for_runs(self, runs: dict[str, str], timeout: float, on_poll=None) -> dict[str, str]:
        """Poll until every run (dag_id -> run_id) has finished; returns dag_id -> state."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            if on_poll is not None:
                on_poll()
            states = {dag_id: self.run_state(dag_id, run_id) for dag_id, run_id in runs.items()}
            if set(states.values()) <= FINISHED:
                return states
            time.sleep(3)   # the api-server shares two cores with everything else
        raise AssertionError(f"runs not finished within {timeout:.0f}s: {states}")
