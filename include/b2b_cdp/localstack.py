"""`make up` / `make down`: a local Airflow without Docker, and the process supervisor behind it.

`up` starts the warehouse (the configured `cdp_warehouse`, else the embedded PostgreSQL), the API
emulators on a scenario, and the Airflow components (api-server, scheduler, dag-processor,
triggerer, plus Celery workers under the CeleryExecutor) as background processes, each in its own
process group, with its log under <home>/logs and its pid file under <home>/run (home: build/local).
`down` stops what `up` started. `make test-distributed` starts its CeleryExecutor stack with the
same code.

The environment follows docker-compose.yaml's x-airflow-common where it applies: the same
connection ids (set by b2b_cdp.demo.connect_emulators, as `make demo` does), CDP_DROPZONE,
SimpleAuthManager, examples off, new DAGs paused.

    python -m b2b_cdp.localstack up [--scenario FILE] [--port N] [--home DIR] [--executor ...]
    python -m b2b_cdp.localstack down [--home DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from b2b_cdp.config import PROJECT_ROOT
from b2b_cdp.demo import BUILD_DIR, DEFAULT_SCENARIO

LOCAL_HOME = BUILD_DIR / "local"
DEFAULT_PORT = 8080
ADMIN_USER = "admin"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
EMULATORS = "emulators"
WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_CDP_WAREHOUSE"
WORKER_HOSTNAME_ENV = "CDP_WORKER_HOSTNAME"

# How the stack gets a task back when the process running it dies (a worker killed, a machine lost).
# The task instance stays `running` in the metadata database until the scheduler sees its heartbeats
# stop: only then is it failed and retried (the DAGs' retries). Airflow's 300 s default leaves a dead
# worker's task hanging for five minutes; the supervisor heartbeats every 5 s, so 45 s still forgives
# several late beats on a busy two-core machine.
RECOVERY_CONFIG = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # Every component shares the machine with the api-server: 5 s (the default) for an execution-API
    # answer fails tasks at their start whenever the machine is busy.
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
}

# Celery: acks_late keeps a message unacknowledged until its task has run, so a worker killed with a
# task in hand does not silently lose the message. It is NOT what reruns the task: Redis hands an
# unacknowledged message out again only after the visibility timeout (24 h), and lowering that would
# redeliver every task running longer than it. The heartbeat timeout above reruns it. One message per
# worker slot (prefetch multiplier 1), so a dead worker never takes tasks it had not started down
# with it: those would wait for the scheduler's queued timeout (600 s). That timeout stays at its
# default because it is also how long a queued task's token is valid: a task still in the broker
# after it can no longer start.
CELERY_CONFIG = {
    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
}


class StackError(RuntimeError):
    """The stack could not start; the message names the log to read."""


@dataclass(frozen=True)
class StackOptions:
    home: Path = LOCAL_HOME
    scenario: Path = DEFAULT_SCENARIO
    port: int = DEFAULT_PORT
    executor: str = "LocalExecutor"           # or CeleryExecutor (then broker_url and workers)
    metadata_db: str | None = None             # SQLAlchemy URL; None: database `airflow` in the embedded PostgreSQL
    broker_url: str | None = None              # Celery broker, e.g. redis://127.0.0.1:6379/0
    workers: int = 0                           # Celery workers, named worker-1, worker-2, ...
    worker_concurrency: int = 2
    clock_mode: str = "wall"                   # the emulators' clock: wall (as under Docker) or frozen
    airflow_config: Mapping[str, str] = field(default_factory=dict)   # extra AIRFLOW__SECTION__KEY values
    start_timeout: float = 240.0


@dataclass(frozen=True)
class Stack:
    home: Path
    api_url: str
    username: str
    password: str = field(repr=False)
    emulator_urls: dict[str, str]


# ---------------------------------------------------------------------------- processes

def log_path(home: Path, name: str) -> Path:
    return Path(home) / "logs" / f"{name}.log"


def _pid_path(home: Path, name: str) -> Path:
    return Path(home) / "run" / f"{name}.pid"


def start_process(home: Path, name: str, argv: list[str], env: Mapping[str, str]) -> int:
    """Start argv in the background in its own process group (so stopping it reaches everything it
    spawned), appending its output to logs/<name>.log; records its pid (and start time, so a reused
    pid is never mistaken for it)."""
    import psutil

    log_file = log_path(home, name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _pid_path(home, name).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(argv, env=dict(env), cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started = psutil.Process(process.pid).create_time()
    _pid_path(home, name).write_text(f"{process.pid} {started}\n", encoding="utf-8")
    return process.pid


def running_processes(home: Path) -> dict[str, "psutil.Process"]:
    """name -> process, for every pid file whose process is still the one started."""
    import psutil

    found = {}
    for pid_file in sorted((Path(home) / "run").glob("*.pid")):
        try:
            pid, started = pid_file.read_text(encoding="utf-8").split()
            process = psutil.Process(int(pid))
            if abs(process.create_time() - float(started)) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
                found[pid_file.stem] = process
        except (ValueError, psutil.Error):
            continue
    return found


def stop_processes(home: Path, names: list[str], *, grace: float = 20.0) -> list[str]:
    """Stop started processes with everything they spawned: TERM to their process groups, KILL to
    what is left after `grace` seconds (grace=0: KILL at once, as when a machine dies). Returns the
    names that were running."""
    import psutil

    alive = running_processes(home)
    stopped, tree = [], []
    for name in names:
        _pid_path(home, name).unlink(missing_ok=True)
        if name in alive:
            with suppress(psutil.NoSuchProcess):
                tree += [alive[name], *alive[name].children(recursive=True)]
                stopped.append(name)
    if grace > 0:
        _signal_groups(tree, signal.SIGTERM)
        _, tree = psutil.wait_procs(tree, timeout=grace)
    _signal_groups(tree, signal.SIGKILL)
    for leftover in tree:   # a child that left the groups (its own session) is killed by pid
        with suppress(psutil.Error):
            leftover.kill()
    psutil.wait_procs(tree, timeout=10)
    return stopped


def _signal_groups(processes: list, sig: signal.Signals) -> None:
    own_group = os.getpgid(0)
    groups = set()
    for process in processes:
        with suppress(ProcessLookupError):
            groups.add(os.getpgid(process.pid))
    for group in groups - {own_group}:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- databases

def database_exists(admin_dsn: str, name: str) -> bool:
    from b2b_cdp import warehouse
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return bool(warehouse.fetch_all(conn, "local/database_exists", {"database": name}))


def create_database(admin_dsn: str, name: str) -> None:
    """Create a database on the server admin_dsn reaches (a libpq connection string), if missing."""
    from b2b_cdp import warehouse
    import psycopg

    if database_exists(admin_dsn, name):
        return
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        warehouse.run(conn, "local/create_database", identifiers={"database": name}).close()


def drop_database(admin_dsn: str, name: str) -> None:
    from b2b_cdp import warehouse
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        warehouse.run(conn, "local/drop_database", identifiers={"database": name}).close()


def _embedded_postgres(home: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under <home>/warehouse, left running after this
    process exits; returns its socket directory. It becomes the warehouse only when none is configured."""
    from b2b_cdp.embedded import start_embedded_warehouse

    configured = os.environ.get(WAREHOUSE_CONN_ENV)
    socket_dir = start_embedded_warehouse(Path(home) / "warehouse", keep_running=True)
    if configured:
        os.environ[WAREHOUSE_CONN_ENV] = configured
    return socket_dir


def _stop_embedded_postgres(home: Path) -> bool:
    """Fast shutdown of the embedded PostgreSQL (SIGINT, as `pg_ctl stop -m fast`: open sessions are
    ended), found by its postmaster.pid; returns whether it was running."""
    import psutil

    try:
        pid = int((Path(home) / "warehouse" / "postmaster.pid").read_text(encoding="utf-8").split()[0])
        postmaster = psutil.Process(pid)
        if not postmaster.name().startswith("postgres"):   # a stale file: the pid is someone else's now
            return False
        postmaster.send_signal(signal.SIGINT)
    except (OSError, ValueError, IndexError, psutil.Error):
        return False
    psutil.wait_procs([postmaster], timeout=60)
    return True


# ---------------------------------------------------------------------------- the stack

def _start_emulators(options: StackOptions, env: Mapping[str, str]) -> dict[str, str]:
    """The emulators in the background; returns the URL map they print first."""
    log_file = log_path(options.home, EMULATORS)
    offset = log_file.stat().st_size if log_file.exists() else 0   # the log is kept across restarts
    start_process(options.home, EMULATORS, [
        sys.executable, "-m", "emulators", "--scenario", str(Path(options.scenario).resolve()),
        "--state-dir", str(Path(options.home) / "emulators"), "--clock-mode", options.clock_mode], env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_file, "rb") as log:
            log.seek(offset)
            for line in log.read().decode("utf-8", "replace").splitlines(keepends=True):
                if line.startswith("{") and line.endswith("\n"):
                    return json.loads(line)
        if EMULATORS not in running_processes(options.home):
            break
        time.sleep(0.2)
    raise StackError(f"the emulators did not start; see {log_file}")


def _stack_keys(airflow_home: Path) -> dict[str, str]:
    """The keys every component must share (task tokens, signed log requests, encrypted connections),
    made once per stack home and kept with it: a component that generated its own would refuse the
    others' tokens, and a new Fernet key would lose the connections saved in the metadata database."""
    from cryptography.fernet import Fernet

    keys_file = airflow_home / "stack-keys.json"
    if not keys_file.exists():
        keys_file.touch(mode=0o600)
        keys_file.write_text(json.dumps({
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}), encoding="utf-8")
    return json.loads(keys_file.read_text(encoding="utf-8"))


def _airflow_environment(options: StackOptions, metadata_db: str) -> dict[str, str]:
    airflow_home = Path(options.home) / "airflow"
    api_url = f"http://127.0.0.1:{options.port}"
    env = {
        **_stack_keys(airflow_home),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__EXECUTOR": options.executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",   # user:role; the password is generated
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(options.port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{options.port}",
        # Tasks reach the api-server here; its default follows base_url, which only browsers use.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        # Every component reads its logs' folder locally; the log servers get free ports so that two
        # stacks (or a stack and another Airflow) can share the machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "GX_ANALYTICS_ENABLED": "False",
        **RECOVERY_CONFIG,
    }
    if options.executor == "CeleryExecutor":
        if not options.broker_url:
            raise StackError("the CeleryExecutor needs a broker URL (--broker-url)")
        env.update(CELERY_CONFIG)
        env["AIRFLOW__CELERY__BROKER_URL"] = options.broker_url
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + metadata_db.replace("+psycopg2", "", 1)
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(options.worker_concurrency)
        # Queue no more tasks than the workers have slots: the rest wait in the scheduler, not in the
        # broker, where their tokens would age (see CELERY_CONFIG).
        env["AIRFLOW__CORE__PARALLELISM"] = str(max(1, options.workers * options.worker_concurrency))
    env.update(options.airflow_config)
    return env


def worker_hostname() -> str:
    """[core] hostname_callable of the stack's Celery workers: the name the stack gave each worker,
    so task instances show which worker ran them, as separate machines would."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


class AlreadyUp(StackError):
    """`up` found the stack running."""


def up(options: StackOptions = StackOptions()) -> Stack:
    """Start the whole stack; raises StackError (naming the log to read) when a part does not come up."""
    home = Path(options.home).resolve()
    options = dataclasses.replace(options, home=home)
    if running_processes(home):
        state = home / "run" / "stack.json"
        address = json.loads(state.read_text())["api_url"] if state.exists() else "(still starting)"
        raise AlreadyUp(f"already up: {_browser_address(address)} (logs in {home / 'logs'}); "
                        "`make down` stops it")
    for folder in ("logs", "run", "airflow"):
        (home / folder).mkdir(parents=True, exist_ok=True)

    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    from b2b_cdp.demo import connect_emulators

    metadata_db = options.metadata_db
    if not os.environ.get(WAREHOUSE_CONN_ENV) or metadata_db is None:
        socket_dir = _embedded_postgres(home)
        if metadata_db is None:
            create_database(f"host={socket_dir} user=postgres dbname=postgres", "airflow")
            metadata_db = f"postgresql+psycopg2://postgres@/airflow?host={socket_dir}"

    emulator_urls = _start_emulators(options, os.environ)
    # The configuration's connections and CDP_DROPZONE, set in this process's environment as `make demo` does.
    connect_emulators(emulator_urls, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    env = {**os.environ, **_airflow_environment(options, metadata_db)}

    print(f"Preparing the Airflow metadata database ({options.executor})", flush=True)
    with open(log_path(home, "init"), "ab") as out:
        prepared = subprocess.run([sys.executable, "-m", "b2b_cdp.localstack", "init"], env=env,
                                  cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    if prepared.returncode != 0:
        raise StackError(f"the metadata database could not be prepared; see {log_path(home, 'init')}")

    airflow = [sys.executable, "-m", "airflow"]
    for service in SERVICES:
        start_process(home, service, [*airflow, service], env)
    workers = options.workers if options.executor == "CeleryExecutor" else 0
    for name in (f"worker-{number}" for number in range(1, workers + 1)):
        start_process(home, name, [*airflow, "celery", "worker", "--celery-hostname", f"{name}@%h",
                                   "--concurrency", str(options.worker_concurrency), "--skip-serve-logs"],
                      {**env, WORKER_HOSTNAME_ENV: name,
                       "AIRFLOW__CORE__HOSTNAME_CALLABLE": "b2b_cdp.localstack.worker_hostname"})

    api_url = f"http://127.0.0.1:{options.port}"
    print(f"Waiting for the api-server on {api_url}", flush=True)
    _wait_for_api(home, api_url, options.start_timeout)
    password = _admin_password(home / "airflow")
    (home / "run" / "stack.json").write_text(json.dumps({"api_url": api_url, "executor": options.executor,
                                                         "emulators": emulator_urls}) + "\n", encoding="utf-8")
    return Stack(home=home, api_url=api_url, username=ADMIN_USER, password=password, emulator_urls=emulator_urls)


def _browser_address(api_url: str) -> str:
    return api_url.replace("127.0.0.1", "localhost")


def _wait_for_api(home: Path, api_url: str, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(requests.RequestException):
            if requests.get(f"{api_url}/api/v2/version", timeout=5).status_code == 200:
                return
        if "api-server" not in running_processes(home):
            raise StackError(f"the api-server exited; see {log_path(home, 'api-server')}")
        time.sleep(1)
    raise StackError(f"the api-server did not answer {api_url}/api/v2/version within {timeout:.0f}s; "
                     f"see {log_path(home, 'api-server')}")


def _admin_password(airflow_home: Path) -> str:
    """The admin password SimpleAuthManager generated when the api-server started."""
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with suppress(OSError, ValueError):
            return json.loads(passwords.read_text(encoding="utf-8"))[ADMIN_USER]
        time.sleep(0.5)
    raise StackError(f"no password for {ADMIN_USER} in {passwords}")


def down(home: Path = LOCAL_HOME) -> list[str]:
    """Stop every process `up` started, Airflow's before the emulators, then the embedded
    PostgreSQL; returns what was stopped."""
    home = Path(home).resolve()
    airflow = sorted(name for name in running_processes(home) if name != EMULATORS)
    stopped = stop_processes(home, airflow) + stop_processes(home, [EMULATORS])
    for pid_file in (home / "run").glob("*.pid"):   # processes that had exited on their own
        pid_file.unlink()
    if _stop_embedded_postgres(home):
        stopped.append("embedded PostgreSQL")
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m b2b_cdp.localstack",
                                     description="A local Airflow without Docker: up, down.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the stack in the background")
    start.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    start.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)),
                       help=f"the UI and API port (default: $PORT or {DEFAULT_PORT})")
    start.add_argument("--executor", choices=("LocalExecutor", "CeleryExecutor"), default="LocalExecutor")
    start.add_argument("--metadata-db", default=None,
                       help="SQLAlchemy URL (default: database `airflow` in the embedded PostgreSQL)")
    start.add_argument("--broker-url", default=None, help="Celery broker (CeleryExecutor)")
    start.add_argument("--workers", type=int, default=1, help="Celery workers (CeleryExecutor; default 1)")
    start.add_argument("--clock-mode", choices=("wall", "frozen"), default="wall",
                       help="the emulators' clock (default: wall, as under Docker)")
    for command in (start, commands.add_parser("down", help="stop what `up` started")):
        command.add_argument("--home", type=Path, default=LOCAL_HOME, help="where logs, pids and state live")
    commands.add_parser("init", help="migrate the metadata database and create the pools (`up` runs it)")
    args = parser.parse_args(argv)

    if args.command == "init":
        from b2b_cdp.orchestration import prepare_metadata
        prepare_metadata()
        return 0
    if args.command == "down":
        stopped = down(args.home)
        print(f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running.")
        return 0
    options = StackOptions(home=args.home, scenario=args.scenario, port=args.port, executor=args.executor,
                           metadata_db=args.metadata_db, broker_url=args.broker_url, workers=args.workers,
                           clock_mode=args.clock_mode)
    try:
        stack = up(options)
    except AlreadyUp as exc:
        print(str(exc)[0].upper() + str(exc)[1:])
        return 0
    except StackError as exc:
        print(f"up: {exc}", file=sys.stderr)
        return 1
    print(f"Airflow UI: {_browser_address(stack.api_url)}\n"
          f"  user {stack.username}, password {stack.password}\n"
          f"  logs and pid files under {stack.home}; `make down` stops everything")
    return 0


if __name__ == "__main__":
    sys.exit(main())
