"""The process supervisor behind `make up` / `make down` and the distributed run (b2b_cdp.localstack).

Not marked distributed: it needs neither Redis nor PostgreSQL and takes seconds, so `make test` runs it.
"""

from __future__ import annotations

import os
import sys
import time

import psutil

from b2b_cdp import localstack

# A parent that starts a child in a session (and process group) of its own, as Airflow's task
# supervisor does with the task process, then both wait; the child's pid is printed for the test.
PARENT_WITH_DETACHED_CHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n")
IGNORES_TERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n"


def wait_for_output(home, name: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = localstack.log_path(home, name).read_text()
        if text.endswith("\n"):
            return text.strip()
        time.sleep(0.05)
    raise AssertionError(f"{name} printed nothing")


def test_stopping_a_process_also_stops_what_it_spawned_in_other_groups(tmp_path):
    pid = localstack.start_process(tmp_path, "parent", [sys.executable, "-c", PARENT_WITH_DETACHED_CHILD],
                                   os.environ)
    child = psutil.Process(int(wait_for_output(tmp_path, "parent")))
    assert os.getpgid(child.pid) != os.getpgid(pid)
    assert list(localstack.running_processes(tmp_path)) == ["parent"]

    assert localstack.stop_processes(tmp_path, ["parent"], grace=0) == ["parent"]

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert localstack.running_processes(tmp_path) == {}
    assert localstack.stop_processes(tmp_path, ["parent"]) == []   # nothing left to stop


def test_a_process_ignoring_term_is_killed_after_the_grace_period(tmp_path):
    pid = localstack.start_process(tmp_path, "stubborn", [sys.executable, "-c", IGNORES_TERM], os.environ)
    wait_for_output(tmp_path, "stubborn")
    started = time.monotonic()

    assert localstack.stop_processes(tmp_path, ["stubborn"], grace=1) == ["stubborn"]

    assert 1 <= time.monotonic() - started < 10
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_pid_file_whose_pid_now_belongs_to_another_process_is_not_ours(tmp_path):
    (tmp_path / "run").mkdir()
    # This very process, but "started" at another time: a pid the system has since handed out again.
    (tmp_path / "run" / "api-server.pid").write_text(f"{os.getpid()} {psutil.Process().create_time() - 60}\n")

    assert localstack.running_processes(tmp_path) == {}
    assert localstack.stop_processes(tmp_path, ["api-server"]) == []
    assert psutil.Process().is_running()
