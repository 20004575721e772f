"""The Docker and Astro files agree with the project: docker-compose.yaml, Dockerfile (Astro),
airflow_settings.yaml, docker/requirements-image.txt and the fixed-port emulator wrapper.

No Docker engine is needed: the files are parsed, and the emulator wrapper is run for real."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = ("airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker")
SERVICES = ("postgres", "redis", *AIRFLOW_SERVICES, "emulators", "s3")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (ROOT / "docker-compose.yaml").read_text()


@pytest.fixture(scope="module")
def settings() -> dict:
    return yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())


@pytest.fixture
def config(monkeypatch):
    """The shipped configuration, the one docker-compose.yaml mounts (CDP_CONFIG)."""
    from b2b_cdp.config import load_config

    monkeypatch.setenv("CDP_CONFIG", str(ROOT / "include" / "config" / "cdp.yaml"))
    return load_config()


def referenced_connections(cfg) -> dict[str, str | None]:
    """conn_id -> emulated system key (None: no emulator behind it), every id the configuration names."""
    systems: dict[str, str | None] = {"cdp_warehouse": None}
    for source in cfg.sources:
        if getattr(source, "conn_id", None):
            systems[source.conn_id] = source.system_key
    for dest in cfg.destinations:
        if not getattr(dest, "conn_id", None):
            continue
        systems[dest.conn_id] = {"marketo": f"marketo:{getattr(dest, 'munchkin_id', '')}",
                                 "linkedin": "linkedin:ads"}.get(dest.type)
    return systems


def emulator_ports(service: dict) -> dict[str, int]:
    """--port KEY=PORT pairs of the emulators service's command."""
    command = service["command"]
    assert isinstance(command, list), "the emulators command should be a list (one argument per item)"
    ports = {}
    for flag, value in zip(command, command[1:]):
        if flag == "--port":
            key, _, port = value.rpartition("=")
            ports[key] = int(port)
    return ports


def connection_port(value: str) -> int:
    """The port of an AIRFLOW_CONN_ value (JSON with a URL host, or a URI)."""
    if value.lstrip().startswith("{"):
        return urllib.parse.urlsplit(json.loads(value)["host"]).port
    return urllib.parse.urlsplit(value).port


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(re.sub(r"\s+", "", line))
    return lines


def requirement_name(line: str) -> str:
    return re.split(r"[\[=<>~!;@ ]", line, maxsplit=1)[0].lower().replace("_", "-")


# --------------------------------------------------------------------------- docker-compose.yaml


def test_compose_has_every_service(compose):
    missing = [name for name in SERVICES if name not in compose["services"]]
    assert not missing, f"docker-compose.yaml lacks services {missing}"


def test_airflow_services_share_the_common_image_and_environment(compose, compose_text):
    common = compose["x-airflow-common"]
    assert common["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "postgres" in common["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert re.search(rf"^  {re.escape(name)}:\n    <<: \*airflow-common$", compose_text, re.M), \
            f"{name} does not start with '<<: *airflow-common'"
        assert service.get("image") == common["image"] and service.get("build") == common["build"], name
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert service["environment"]["AIRFLOW_CONN_CDP_WAREHOUSE"] == \
            common["environment"]["AIRFLOW_CONN_CDP_WAREHOUSE"], name
    assert compose["services"]["emulators"]["image"] == common["image"], "the emulators run in the same image"


def test_commands_match_the_airflow_3_components(compose):
    services = compose["services"]
    assert services["api-server"]["command"] == "api-server"
    assert "8080:8080" in services["api-server"]["ports"]
    assert services["scheduler"]["command"] == "scheduler"
    assert services["dag-processor"]["command"] == "dag-processor"
    assert services["triggerer"]["command"] == "triggerer"
    assert services["worker"]["command"] == "celery worker"
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


@pytest.mark.parametrize("name", ["postgres", "redis", "api-server", "scheduler"])
def test_healthchecks(compose, name):
    test = compose["services"][name]["healthcheck"]["test"]
    assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"


def test_depends_on_conditions(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["worker"]["depends_on"]["api-server"]["condition"] == "service_healthy"
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} healthy; it has no healthcheck"


def test_project_folders_are_mounted(compose):
    volumes = compose["x-airflow-common"]["volumes"]
    for folder in ("dags", "include", "sql"):
        assert f"./{folder}:/opt/airflow/{folder}" in volumes, folder
        assert (ROOT / folder).is_dir()
    env = compose["x-airflow-common"]["environment"]
    assert env["CDP_CONFIG"] == "/opt/airflow/include/config/cdp.yaml"
    assert env["PYTHONPATH"] == "/opt/airflow/include"
    dropzone = env["CDP_DROPZONE"].removeprefix("file://")
    state_mount = next(v for v in compose["services"]["emulators"]["volumes"] if v.startswith("emulator-state:"))
    assert dropzone == state_mount.split(":")[1] + "/dropzone", "the dropzone is the emulators' state dir"


def test_postgres_creates_the_warehouse_database(compose):
    env = compose["x-airflow-common"]["environment"]
    warehouse = urllib.parse.urlsplit(env["AIRFLOW_CONN_CDP_WAREHOUSE"])
    assert warehouse.hostname == "postgres" and warehouse.path == "/cdp"
    init = "\n".join(p.read_text() for p in sorted((ROOT / "docker" / "postgres-init").glob("*.sql")))
    assert re.search(rf"CREATE ROLE {warehouse.username} WITH LOGIN PASSWORD '{warehouse.password}'", init)
    assert re.search(rf"CREATE DATABASE cdp OWNER {warehouse.username}", init)
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in compose["services"]["postgres"]["volumes"]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_DB"] == "airflow"


# --------------------------------------------------------------------------- connections


def test_every_referenced_connection_is_set(compose, settings, config):
    env = compose["x-airflow-common"]["environment"]
    in_settings = {c["conn_id"] for c in settings["airflow"]["connections"]}
    wanted = referenced_connections(config)
    assert {"cdp_warehouse", "marketo_111_aaa_111", "salesforce_crm1"} <= set(wanted)
    for conn_id in wanted:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, f"docker-compose.yaml lacks AIRFLOW_CONN_{conn_id.upper()}"
        assert conn_id in in_settings, f"airflow_settings.yaml lacks connection {conn_id}"


def test_emulator_ports_match_the_connections(compose, settings, config):
    from emulators import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    env = compose["x-airflow-common"]["environment"]
    emulators = compose["services"]["emulators"]
    ports = emulator_ports(emulators)
    published = set(emulators["ports"])
    by_id = {c["conn_id"]: c for c in settings["airflow"]["connections"]}
    for conn_id, system in referenced_connections(config).items():
        if system is None:
            continue
        assert system in ports, f"the emulators command gives {system} (for {conn_id}) no --port"
        value = env[f"AIRFLOW_CONN_{conn_id.upper()}"]
        conn = json.loads(value)
        assert urllib.parse.urlsplit(conn["host"]).hostname == "emulators", conn_id
        assert connection_port(value) == ports[system], f"{conn_id}: compose URL port vs emulator port"
        assert (conn["login"], conn["password"]) == (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), conn_id
        astro = by_id[conn_id]
        assert urllib.parse.urlsplit(astro["conn_host"]).port == ports[system], f"{conn_id}: airflow_settings port"
        assert (astro["conn_login"], astro["conn_password"]) == (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), conn_id
        assert f"{ports[system]}:{ports[system]}" in published, f"port {ports[system]} is not published"


def test_settings_hold_no_other_secret(settings):
    from emulators import DEFAULT_CLIENT_SECRET

    for conn in settings["airflow"]["connections"]:
        if conn["conn_id"] != "cdp_warehouse":
            assert conn.get("conn_password") in (None, DEFAULT_CLIENT_SECRET), conn["conn_id"]


def test_pools_match_the_configuration(settings, config):
    from b2b_cdp.orchestration import required_pools

    pools = {p["pool_name"]: p["pool_slot"] for p in settings["airflow"]["pools"]}
    assert pools == required_pools()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_the_emulator_wrapper_serves_the_fixed_ports(compose):
    """docker/emulators_fixed_ports.py (the emulators service's command) binds the ports it is given
    and announces the public host (Salesforce's instance_url is where the client goes next)."""
    command = compose["services"]["emulators"]["command"]
    assert command[:2] == ["python", "/opt/airflow/docker/emulators_fixed_ports.py"]
    keys = list(emulator_ports(compose["services"]["emulators"]))
    free = dict(zip(keys, _free_ports(len(keys))))
    args = [sys.executable, str(ROOT / "docker" / "emulators_fixed_ports.py"),
            "--scenario", str(ROOT / "include" / "scenarios" / "bodea.yaml"), "--host", "127.0.0.1",
            "--public-host", "localhost"]
    for key, port in free.items():
        args += ["--port", f"{key}={port}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = json.loads(proc.stdout.readline() or "{}")
        assert urls, proc.stderr.read() if proc.poll() is not None else "no URL line"
        for key, port in free.items():
            assert urls[key] == f"http://localhost:{port}", key
        salesforce = next(k for k in free if k.startswith("salesforce:"))
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "cdp-emulator-client",
                                       "client_secret": "cdp-emulator-secret"}).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{free[salesforce]}/services/oauth2/token", body,
                                    timeout=10) as response:
            assert json.load(response)["instance_url"] == f"http://localhost:{free[salesforce]}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# --------------------------------------------------------------------------- images


def test_astro_dockerfile_uses_an_astro_runtime_3_image():
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")]
    assert len(lines) == 1, lines
    assert re.fullmatch(r"FROM astrocrpublic\.azurecr\.io/runtime:3\.3-\d+(-base)?", lines[0]), lines[0]
    text = (ROOT / "Dockerfile").read_text()
    assert "docker/requirements-image.txt" in text and "packages.txt" in text
    assert (ROOT / "packages.txt").is_file()


def test_compose_image_pins_the_airflow_of_requirements_in():
    pinned = next(line for line in requirement_lines(ROOT / "requirements.in")
                  if requirement_name(line) == "apache-airflow")
    version = pinned.split("==", 1)[1]
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={version}" in text
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in text
    assert "docker/requirements-image.txt" in text


def test_image_requirements_are_requirements_in_without_airflow():
    source = [line for line in requirement_lines(ROOT / "requirements.in")
              if requirement_name(line) != "apache-airflow"]
    image = requirement_lines(ROOT / "docker" / "requirements-image.txt")
    assert "apache-airflow" not in {requirement_name(line) for line in image}
    assert sorted(image) == sorted(source), ("docker/requirements-image.txt differs from requirements.in "
                                             "(without apache-airflow): copy the change")


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "build", ".git", "airflow_settings.yaml"} <= ignored
