"""The "B2B CDP" view: the plugin in a real `airflow api-server`, its numbers read from the warehouse
after the pipeline's stages ran on Bodea, and the page rendered by headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from b2b_cdp import (activation, guardrails, identity, identity_checks, incremental, ingest, landing_checks,
                     segments, warehouse)
from b2b_cdp.config import load_config
from b2b_cdp.localstack import free_port
from b2b_cdp.ops import record_checkpoints
from tests.conftest import PROJECT_ROOT
from tests.integration.test_pipeline_stages import CLOCK, ingest_everything

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = PROJECT_ROOT / "build" / "screenshots" / "cdp_view.png"
IN_AIRFLOW_SCREENSHOT = SCREENSHOT.with_name("cdp_view_in_airflow.png")
VIEWER, VIEWER_PASSWORD = "viewer", secrets.token_urlsafe(16)
EVALUATIONS = [CLOCK - timedelta(days=30), CLOCK - timedelta(days=19), CLOCK]   # before and after p2's visit
METADATA_DB = "cdp_test_airflow_ui"
MARKETO = "marketo_111_aaa_111"


def _metadata_url() -> str:
    """A database of its own for the Airflow metadata, on the warehouse's PostgreSQL server."""
    import sqlalchemy
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=warehouse.WAREHOUSE_CONN_ID)
    with hook.get_conn() as conn:
        conn.autocommit = True
        if not warehouse.fetch_all(conn, "local/database_exists", {"database": METADATA_DB}):
            warehouse.run(conn, "local/create_database", identifiers={"database": METADATA_DB}).close()
    info = hook.get_connection(warehouse.WAREHOUSE_CONN_ID)
    return sqlalchemy.engine.URL.create(
        "postgresql+psycopg", username=info.login, password=info.password or None, database=METADATA_DB,
        query={"host": info.host, "port": str(info.port or 5432)}).render_as_string(hide_password=False)


@pytest.fixture
def api_server(warehouse_conn, tmp_path, monkeypatch):
    """`airflow api-server` with the project's plugins, the warehouse connection and a simple-auth user;
    started first (migrating its metadata database takes a while) and awaited by `base_url`."""
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({VIEWER: VIEWER_PASSWORD}))
    # The checkpoints this test runs render their Data Docs here; the view serves them from there.
    monkeypatch.setenv("CDP_GX_ROOT", str(tmp_path / "gx_root"))
    port = free_port()
    env = dict(
        os.environ,
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=_metadata_url(),
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{VIEWER}:viewer",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API__WORKERS="1",
    )
    log = open(tmp_path / "api-server.log", "w")
    airflow = [sys.executable, "-m", "airflow"]
    command = (f"{shlex.join(airflow + ['db', 'migrate'])} && "
               f"exec {shlex.join(airflow + ['api-server', '--host', '127.0.0.1', '--port', str(port)])}")
    server = subprocess.Popen(["sh", "-c", command], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)

    def base_url() -> str:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"api-server exited {server.returncode}: {(tmp_path / 'api-server.log').read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v2/version", timeout=2).ok:
                    return f"http://127.0.0.1:{port}"
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        pytest.fail("api-server did not answer within 150 s")

    yield base_url
    os.killpg(server.pid, signal.SIGTERM)   # its own session: the migration too, if still running
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    log.close()


def run_the_pipeline(sandbox, fleet) -> None:
    """Every stage on Bodea, with the checkpoint results and freshness records the DAGs write: a
    backfill, three daily evaluations (before and after p2's visit), a sync to each destination,
    then one incremental sync (a new visit, landed a minute after it happened) and its stitching."""
    cfg = load_config()
    record_checkpoints(sandbox, "run-1", guardrails.run_config_checkpoints(cfg))
    ingest_everything("run-1")
    landing_checks.check_landed(MARKETO, "run-1", CLOCK)
    identity.stitch(sandbox, "run-1")
    identity_checks.check_stitching(sandbox, "run-1")
    for number, as_of in enumerate(EVALUATIONS, 1):
        segments.evaluate_sandbox(cfg, sandbox, as_of=as_of, run_id=f"run-{number}")
    for destination in cfg.destinations:
        activation.activate_destination(destination.id, "run-1")
    fleet.mutate(f"marketo:{cfg.source(MARKETO).munchkin_id}", "add_activity", lead_id=1003, activity_type_id=1,
                 primary_attribute_value="www.bodea.com/pricing")
    fleet.advance(60)
    assert incremental.sync_marketo_activities(MARKETO, "inc-1", CLOCK) == 1
    ingest.normalize(MARKETO)
    identity.stitch(sandbox, "inc-1")


class _Marked(HTMLParser):
    """The text of every element carrying a data-metric or data-field attribute, by its path of
    data-* attributes (e.g. ("destination=marketo_111_aaa_111", "field=audience_size"))."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, tuple[str, ...], bool]] = []
        self.values: dict[tuple[str, ...], str] = {}
        self.attributes: dict[tuple[str, ...], dict[str, str]] = {}
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "meta", "link", "circle", "line", "path"):
            return
        attrs = dict(attrs)
        path = self.stack[-1][1] if self.stack else ()
        marks = tuple(f"{k[5:]}={v}" for k, v in attrs.items() if k.startswith("data-") and k != "data-value")
        path += marks
        leaf = any(k in ("data-metric", "data-field") for k in attrs)
        self.stack.append((tag, path, leaf))
        if leaf:
            self._text[len(self.stack)] = []
            self.attributes[path] = {k: v or "" for k, v in attrs.items()}

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1][0] != tag:
            return
        _, path, leaf = self.stack[-1]
        if leaf:
            self.values[path] = "".join(self._text.pop(len(self.stack))).strip()
        self.stack.pop()

    def handle_data(self, data):
        for parts in self._text.values():
            parts.append(data)


def marked_values(page: str) -> _Marked:
    parser = _Marked()
    parser.feed(page)
    return parser


def one_row(sandbox, statement: str, params=None) -> tuple:
    with warehouse.connect(sandbox) as conn:
        return conn.execute(statement, params).fetchone()


def expected_values(sandbox) -> dict[tuple[str, ...], str]:
    """What the page must show for the sandbox, read straight from the warehouse."""
    label = f"sandbox={sandbox.platform_instance}/{sandbox.name}"
    persons, accounts = one_row(sandbox, "SELECT (SELECT count(*) FROM profile_person), "
                                         "(SELECT count(*) FROM profile_account)")
    expected = {(label, "metric=persons"): f"{persons:,}", (label, "metric=accounts"): f"{accounts:,}"}
    with warehouse.connect(sandbox) as conn:
        for segment_id, members in conn.execute(
                "SELECT DISTINCT ON (segment_id) segment_id, members FROM audience_evaluation "
                "ORDER BY segment_id, evaluated_at DESC").fetchall():
            expected[(label, f"segment={segment_id}", "field=members")] = f"{members:,}"
        for destination, audience, size, calls in conn.execute(
                "SELECT DISTINCT ON (destination_id, audience_key) destination_id, audience_key, audience_size, "
                "api_calls FROM activation_sync_log ORDER BY destination_id, audience_key, started_at DESC"):
            row = (label, f"destination={destination}", f"audience={audience}")
            expected[row + ("field=audience_size",)] = f"{size:,}"
            expected[row + ("field=api_calls",)] = f"{calls:,}"
        for checkpoint, violations in conn.execute(
                "SELECT DISTINCT ON (checkpoint) checkpoint, jsonb_array_length(details -> 'violations') "
                "FROM ops_checkpoint_result ORDER BY checkpoint, recorded_at DESC"):
            expected[(label, f"checkpoint={checkpoint}", "field=violations")] = f"{violations:,}"
        for source_id, stream in conn.execute("SELECT DISTINCT source_id, stream FROM ops_freshness"):
            expected[(label, f"stream={source_id}/{stream}", "field=window")] = "60 min"
        expected[(label, "stream=profiles", "field=window")] = "10 min"
    return expected


def chromium_render(pages: list[tuple[str, str, Path]], token: str, profile: Path) -> list[str]:
    """Open each (url, JavaScript readiness test, screenshot path) in headless Chromium, signed in as
    the Airflow UI is (its `_token` session cookie); save a 1400x1000 screenshot of each once the test
    holds and return their rendered DOMs. Driven over the DevTools protocol, because Chromium's
    command line has no way to hand the browser a cookie."""
    from websockets.sync.client import connect

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,1000", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.2)
        devtools = f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        target = next(t for t in requests.get(f"{devtools}/json/list", timeout=10).json() if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            ids = iter(range(1, 10_000))

            def call(method: str, **params):
                call_id = next(ids)
                ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
                while True:   # events arriving meanwhile are not needed: readiness is polled
                    message = json.loads(ws.recv(timeout=60))
                    if message.get("id") == call_id:
                        assert "error" not in message, message
                        return message["result"]

            def evaluate(expression: str):
                return call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

            call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
            doms = []
            for url, ready, screenshot in pages:
                assert call("Network.setCookie", name="_token", value=token, url=url, httpOnly=True)["success"]
                call("Page.navigate", url=url)
                deadline = time.monotonic() + 60
                while not evaluate(f"document.readyState === 'complete' && Boolean({ready})"):
                    assert time.monotonic() < deadline, f"{url} never became ready ({ready})"
                    time.sleep(0.25)
                doms.append(evaluate("document.documentElement.outerHTML"))
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
        return doms
    finally:
        os.killpg(browser.pid, signal.SIGTERM)   # its own session: renderer and GPU processes too
        try:
            browser.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()


def assert_screenshot(path: Path) -> None:
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1400, 1000)


def test_cdp_view_shows_the_warehouse_in_the_airflow_ui(clean_sandboxes, bodea_fleet, api_server, tmp_path):
    sandbox = clean_sandboxes[0]
    run_the_pipeline(sandbox, bodea_fleet)
    base = api_server()

    # The plugin is loaded, its app mounted under /cdp and "B2B CDP" listed for the UI's navigation.
    token = requests.post(f"{base}/auth/token", json={"username": VIEWER, "password": VIEWER_PASSWORD},
                          timeout=30).json()["access_token"]
    signed_in = {"Authorization": f"Bearer {token}"}
    plugins = requests.get(f"{base}/api/v2/plugins", headers=signed_in, timeout=30).json()["plugins"]
    plugin = next(p for p in plugins if p["name"] == "b2b_cdp")
    assert [(a["name"], a["url_prefix"]) for a in plugin["fastapi_apps"]] == [("b2b_cdp_view", "/cdp")]
    assert [(v["name"], v["href"], v["destination"], v["url_route"]) for v in plugin["external_views"]] == [
        ("B2B CDP", "cdp/", "nav", "b2b-cdp")]

    # Airflow leaves plugin apps open; this one asks Airflow's auth manager, like the REST API does.
    assert requests.get(f"{base}/cdp/", timeout=30).status_code == 401
    response = requests.get(f"{base}/cdp/", headers=signed_in, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")

    # Every number shown is the warehouse's.
    shown = marked_values(page)
    expected = expected_values(sandbox)
    assert {path: shown.values.get(path) for path in expected} == expected
    label = f"sandbox={sandbox.platform_instance}/{sandbox.name}"
    rates = {path: attrs["data-value"] for path, attrs in shown.attributes.items() if path[-1] == "field=match_rate"}
    with warehouse.connect(sandbox) as conn:
        stored = conn.execute("SELECT DISTINCT ON (destination_id, audience_key) destination_id, audience_key, "
                              "match_rate FROM activation_sync_log "
                              "ORDER BY destination_id, audience_key, started_at DESC").fetchall()
    assert rates == {(label, f"destination={d}", f"audience={a}", "field=match_rate"): str(r) for d, a, r in stored}
    assert len(stored) == len(load_config().destinations) and all(r == 1 for _, _, r in stored)
    # The new visit landed a minute after it happened (on the source's clock): 60 s of a 60-minute window.
    lake_p95 = [text for path, text in shown.values.items()
                if path[1].startswith(f"stream={MARKETO}/activities") and path[-1] == "field=p95"]
    assert lake_p95 == ["60 s"]
    # The chart has one point per evaluation; p2 is out before the visit, then in.
    assert page.count("<circle") == one_row(sandbox, "SELECT count(*) FROM audience_evaluation")[0]
    assert [shown.values[(label, "segment=high_value_new_product_visitors", "field=members")]] == ["1"]
    # Checkpoints link to their Data Docs page, served (to signed-in users only) from the site.
    link = re.search(rf'data-checkpoint="identity__{sandbox.schema}".*?href="(data-docs/[^"]+)"', page).group(1)
    assert requests.get(f"{base}/cdp/{link}", timeout=30).status_code == 401
    docs = requests.get(f"{base}/cdp/{link}", headers=signed_in, timeout=30)
    # The page Great Expectations rendered for the stitching checkpoint's run, with its expectation.
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", docs.text))
    assert f"Expectation Suite: identity__{sandbox.schema}" in text and "Status: Succeeded" in text
    assert "values must be less than or equal to 0" in text
    assert requests.get(f"{base}/cdp/data-docs/..%2F..%2Fpasswords.json", headers=signed_in,
                        timeout=30).status_code == 404

    # Chromium renders the same page, signed in with the session cookie the Airflow UI uses; and
    # the Airflow UI shows it under its "B2B CDP" navigation entry.
    for screenshot in (SCREENSHOT, IN_AIRFLOW_SCREENSHOT):
        screenshot.unlink(missing_ok=True)
    embedded = "document.querySelector('iframe')?.contentDocument?.querySelector('[data-metric]')"
    dom, airflow_dom = chromium_render([
        (f"{base}/cdp/", "document.querySelector('[data-metric]')", SCREENSHOT),
        (f"{base}/plugin/b2b-cdp", embedded, IN_AIRFLOW_SCREENSHOT),
    ], token, tmp_path / "chromium-profile")
    rendered = marked_values(dom)
    assert {path: rendered.values.get(path) for path in expected} == expected
    assert "<svg" in dom and "B2B CDP" in dom
    assert re.search(r'href="[^"]*plugin/b2b-cdp"', airflow_dom)                       # the nav entry
    iframe = re.search(r"<iframe[^>]*>", airflow_dom).group(0)                          # the view, embedded
    assert 'title="B2B CDP"' in iframe and re.search(r'src="[^"]*cdp/"', iframe), iframe
    for screenshot in (SCREENSHOT, IN_AIRFLOW_SCREENSHOT):
        assert_screenshot(screenshot)


def test_a_sandbox_no_pipeline_ran_on_is_named_not_an_error(warehouse_conn):
    from b2b_cdp.config import Sandbox
    from b2b_cdp.ui import render_page, sandbox_overview

    overview = sandbox_overview(Sandbox(platform_instance="nowhere", name="never_migrated"))
    assert not overview.migrated
    page = render_page([overview])
    assert 'data-sandbox="nowhere/never_migrated"' in page and "No pipeline run has created" in page


def test_values_from_the_warehouse_are_escaped(tmp_path):
    from b2b_cdp.config import Sandbox
    from b2b_cdp.ui import SandboxOverview, render_page

    overview = SandboxOverview(Sandbox(platform_instance="bodea", name="prod"),
                               counts={"persons": 1, "excluded_persons": 0, "accounts": 0})
    overview.checkpoints = [{"checkpoint": 'landing__"x"', "run_id": "r", "success": False,
                             "recorded_at": None, "violations": 1,
                             "first_violation": "raw_web_events <script>alert(1)</script>: email not well-formed"}]
    page = render_page([overview], site=tmp_path)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-checkpoint="landing__&quot;x&quot;"' in page
