"""The "B2B CDP" view of the Airflow UI: one page per deployment showing, for every sandbox, its
profile counts, segment sizes over time, destination syncs, guardrail checkpoints and freshness.

The page is rendered server-side from the warehouse (queries in sql/ui/, read-only), the chart is
inline SVG and the styles are inline, so the page needs nothing from the internet. Every value is
HTML-escaped. `create_app()` builds the FastAPI app the Airflow plugin (plugins/cdp_view.py) mounts;
it answers only users Airflow's auth manager lets see the UI (the session cookie of the Airflow UI or
a bearer token from POST /auth/token), because Airflow does not protect plugin apps itself.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from b2b_cdp import warehouse
from b2b_cdp.config import Sandbox, load_config
from b2b_cdp.guardrails import data_docs_dir

URL_PREFIX = "/cdp"
CHART_POINTS = 60            # evaluations per segment drawn in the chart
SERIES_COLOURS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"]


@dataclass
class SandboxOverview:
    sandbox: Sandbox
    migrated: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    segment_sizes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    syncs: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    lake_freshness: list[dict[str, Any]] = field(default_factory=list)
    profile_freshness: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.sandbox.platform_instance}/{self.sandbox.name}"


# ------------------------------------------------------------------------------ reading


def sandbox_overview(sandbox: Sandbox) -> SandboxOverview:
    """What the page shows for one sandbox, read in one read-only transaction."""
    overview = SandboxOverview(sandbox)
    try:
        with warehouse.connect(sandbox) as conn:
            warehouse.run(conn, "explain/read_only").close()
            overview.counts = warehouse.fetch_dicts(conn, "ui/profile_counts")[0]
            for point in warehouse.fetch_dicts(conn, "ui/segment_sizes", {"points": CHART_POINTS}):
                overview.segment_sizes.setdefault(point["segment_id"], []).append(point)
            overview.syncs = warehouse.fetch_dicts(conn, "ui/destination_syncs")
            overview.checkpoints = warehouse.fetch_dicts(conn, "ui/checkpoint_results")
            overview.lake_freshness = warehouse.fetch_dicts(conn, "ui/lake_freshness")
            overview.profile_freshness = next(iter(warehouse.fetch_dicts(conn, "ui/profile_freshness")), None)
    except psycopg.errors.UndefinedTable:
        # A sandbox no DAG has run on yet has no tables: say so rather than fail the whole page.
        overview.migrated = False
    return overview


def data_docs_page(site: Path, checkpoint: str) -> str | None:
    """The site-relative path of the newest Data Docs validation page of a checkpoint, if any.

    A checkpoint validates one suite per table it checks, named after it (`<checkpoint>` or
    `<checkpoint>__<table>`), and Data Docs keep each validation under validations/<suite>/."""
    validations = site / "validations"
    if not validations.is_dir():
        return None
    pages = [page for suite in validations.iterdir()
             if suite.is_dir() and (suite.name == checkpoint or suite.name.startswith(f"{checkpoint}__"))
             for page in suite.rglob("*.html")]
    if not pages:
        return None
    return max(pages, key=lambda p: p.stat().st_mtime).relative_to(site).as_posix()


# ------------------------------------------------------------------------------ formatting


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _count(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _percent(rate: Any) -> str:
    return "–" if rate is None else f"{float(rate) * 100:.0f}%"


def _moment(value: datetime | None) -> str:
    return "–" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | Decimal | None) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return _trimmed(seconds / 60, "min")
    return _trimmed(seconds / 3600, "h")


def _trimmed(amount: float, unit: str) -> str:
    """One decimal, dropped when it is zero: 60 min, 11.7 min."""
    text = f"{amount:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {tone}">{_e(text)}</span>'


def sync_status(sync: dict[str, Any]) -> tuple[str, str]:
    """A destination audience's latest sync as (status, tone)."""
    if sync["dry_run"]:
        return "dry run", "info"
    if not sync["finished"]:
        return "running", "warn"
    if sync["failed"]:
        return "failed records", "bad"
    return "in sync", "good"


def freshness_status(lag_p95_s: Any, window_s: int) -> tuple[str, str]:
    """A lag measurement against its latency window as (status, tone)."""
    if lag_p95_s is None:
        return "no changes", "muted"
    return ("within window", "good") if float(lag_p95_s) <= window_s else ("over window", "bad")


# ------------------------------------------------------------------------------ the chart


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above value (at least 1), for the y axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def segment_chart(series: dict[str, list[dict[str, Any]]], width: int = 820, height: int = 210) -> str:
    """Segment sizes over time as inline SVG: one step line per segment (a size holds until the
    next evaluation), a dot per evaluation."""
    if not series:
        return '<p class="empty">No segment evaluated yet.</p>'
    left, right, top, bottom = 48, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    moments = [p["evaluated_at"] for points in series.values() for p in points]
    first, last = min(moments), max(moments)
    span = (last - first).total_seconds() or 1.0
    y_max = _nice_ceiling(max(p["members"] for points in series.values() for p in points))

    def x(moment: datetime) -> float:
        if first == last:
            return left + plot_w / 2
        return left + (moment - first).total_seconds() / span * plot_w

    def y(members: int) -> float:
        return top + plot_h - members / y_max * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="Segment sizes over time" xmlns="http://www.w3.org/2000/svg">']
    for tick in sorted({0, y_max // 2, y_max}):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{left - 8}" y="{y(tick) + 4:.1f}" class="tick" text-anchor="end">{tick:,}</text>')
    for moment, anchor in ((first, "start"), (last, "end")) if first != last else ((first, "middle"),):
        parts.append(f'<text x="{x(moment):.1f}" y="{height - 12}" class="tick" text-anchor="{anchor}">'
                     f'{_e(moment.astimezone(timezone.utc).strftime("%Y-%m-%d"))}</text>')
    for index, (segment_id, points) in enumerate(sorted(series.items())):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        path = []
        for i, point in enumerate(points):
            px, py = x(point["evaluated_at"]), y(point["members"])
            if i:
                path.append(f"H{px:.1f}V{py:.1f}")
            else:
                path.append(f"M{px:.1f} {py:.1f}")
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5" '
                     f'data-segment="{_e(segment_id)}"/>')
        for point in points:
            parts.append(f'<circle cx="{x(point["evaluated_at"]):.1f}" cy="{y(point["members"]):.1f}" r="4" '
                         f'fill="#fff" stroke="{colour}" stroke-width="2">'
                         f'<title>{_e(segment_id)}: {point["members"]:,} on {_e(_moment(point["evaluated_at"]))}'
                         f'</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------ the page


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _kpi(label: str, metric: str, value: Any, note: str = "") -> str:
    note_html = f'<div class="note">{_e(note)}</div>' if note else ""
    return (f'<div class="kpi"><div class="label">{_e(label)}</div>'
            f'<div class="value" data-metric="{_e(metric)}">{_e(_count(value))}</div>{note_html}</div>')


def _segments_card(overview: SandboxOverview) -> str:
    rows = []
    for index, (segment_id, points) in enumerate(sorted(overview.segment_sizes.items())):
        latest = points[-1]
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        rows.append(f'<tr data-segment="{_e(segment_id)}"><td><i class="swatch" style="background:{colour}"></i>'
                    f'{_e(segment_id)}</td>'
                    f'<td class="num" data-field="members">{_count(latest["members"])}</td>'
                    f'<td class="num">+{_count(latest["entered"])} / −{_count(latest["exited"])}</td>'
                    f'<td class="num">{len(points):,}</td><td class="when">{_e(_moment(latest["evaluated_at"]))}</td></tr>')
    table = _table(["Segment", "Members", "Entered / exited", "Evaluations", "Last evaluated"], rows, "")
    return f'<section class="card"><h3>Segment sizes over time</h3>{segment_chart(overview.segment_sizes)}{table}</section>'


def _syncs_card(overview: SandboxOverview) -> str:
    rows = []
    for sync in overview.syncs:
        status, tone = sync_status(sync)
        rate = sync["match_rate"]
        bar = "" if rate is None else (f'<span class="meter"><span style="width:{min(float(rate), 1) * 100:.0f}%">'
                                       f'</span></span>')
        change = (f'+{_count(sync["added"])} −{_count(sync["removed"])}' if not sync["dry_run"] else
                  f'plan +{_count(sync["planned_add"])} −{_count(sync["planned_remove"])}')
        rows.append(
            f'<tr data-destination="{_e(sync["destination_id"])}" data-audience="{_e(sync["audience_key"])}">'
            f'<td>{_e(sync["destination_id"])}<div class="sub">{_e(sync["audience_key"])} · '
            f'{_e(sync["segment_id"])}</div></td><td>{_badge(status, tone)}'
            f'<div class="sub when">{_e(_moment(sync["finished_at"] or sync["started_at"]))}</div></td>'
            f'<td class="num" data-field="audience_size">{_count(sync["audience_size"])}</td>'
            f'<td class="num">{_e(change)}<div class="sub">{_count(sync["skipped"])} skipped · '
            f'<span data-field="failed">{_count(sync["failed"])}</span> failed</div></td>'
            f'<td class="num" data-field="api_calls">{_count(sync["api_calls"])}</td>'
            f'<td class="rate" data-field="match_rate" data-value="{_e(rate)}">{bar}{_percent(rate)}</td></tr>')
    table = _table(["Destination · audience", "Last sync", "Audience", "Change", "API calls", "Match rate"], rows,
                   "No destination synced yet.")
    return f'<section class="card"><h3>Destination syncs</h3>{table}</section>'


def _checkpoints_card(overview: SandboxOverview, site: Path) -> str:
    built = (site / "index.html").is_file()
    rows = []
    for result in overview.checkpoints:
        page = data_docs_page(site, result["checkpoint"]) if built else None
        docs = f'<a href="data-docs/{_e(page)}">view</a>' if page else '<span class="sub">–</span>'
        finding = f' · {_e(result["first_violation"])}' if result["first_violation"] else ""
        rows.append(f'<tr data-checkpoint="{_e(result["checkpoint"])}"><td>{_e(result["checkpoint"])}'
                    f'<div class="sub">{_e(_moment(result["recorded_at"]))}{finding}</div></td>'
                    f'<td>{_badge("passed", "good") if result["success"] else _badge("failed", "bad")}</td>'
                    f'<td class="num" data-field="violations">{_count(result["violations"])}</td>'
                    f'<td class="when">{docs}</td></tr>')
    table = _table(["Checkpoint", "Result", "Violations", "Docs"], rows, "No checkpoint run yet.")
    footer = ('<p class="foot"><a href="data-docs/index.html">All Data Docs</a></p>' if built else
              '<p class="foot">Great Expectations Data Docs have not been built for this deployment.</p>')
    return f'<section class="card"><h3>Guardrail checkpoints</h3>{table}{footer}</section>'


def _freshness_row(key: str, name: str, hop: str, p50: Any, p95: Any, window_s: int, measured: datetime) -> str:
    status, tone = freshness_status(p95, window_s)
    return (f'<tr data-stream="{_e(key)}"><td>{_e(name)}<div class="sub">{_e(hop)}</div>'
            f'<div class="sub">{_e(_moment(measured))}</div></td>'
            f'<td class="num"><span data-field="p95">{_duration(p95)}</span>'
            f'<div class="sub">p50 {_duration(p50)}</div></td>'
            f'<td class="num" data-field="window">{_duration(window_s)}</td><td>{_badge(status, tone)}</td></tr>')


def _freshness_card(overview: SandboxOverview) -> str:
    # Activity streams are named after their activity type ids (activities:1,2,...): the kind says enough.
    rows = [_freshness_row(f'{s["source_id"]}/{s["stream"]}', s["source_id"], f'{s["stream"].split(":")[0]} → lake',
                           s["lake_lag_p50_s"], s["lake_lag_p95_s"], s["lake_window_s"], s["measured_at"])
            for s in overview.lake_freshness]
    profile = overview.profile_freshness
    if profile:
        rows.append(_freshness_row("profiles", "stitching", "lake → profiles", profile["profile_lag_p50_s"],
                                   profile["profile_lag_p95_s"], profile["profile_window_s"],
                                   profile["profiles_built_at"]))
    table = _table(["Stream", "Lag p95", "Window", "Status"], rows, "No incremental sync or stitching measured yet.")
    return f'<section class="card"><h3>Freshness</h3>{table}</section>'


def sandbox_section(overview: SandboxOverview, site: Path) -> str:
    heading = (f'<div class="sandbox-head"><h2>{_e(overview.label)}</h2>'
               f'<code>{_e(overview.sandbox.schema)}</code></div>')
    if not overview.migrated:
        return (f'<section class="sandbox" data-sandbox="{_e(overview.label)}">{heading}'
                f'<p class="empty">No pipeline run has created this sandbox\'s tables yet.</p></section>')
    counts = overview.counts
    in_sync = sum(1 for s in overview.syncs if sync_status(s)[0] == "in sync")
    passed = sum(1 for c in overview.checkpoints if c["success"])
    kpis = "".join([
        _kpi("Persons", "persons", counts["persons"],
             f'{counts["excluded_persons"]:,} excluded by guardrails' if counts["excluded_persons"] else ""),
        _kpi("Accounts", "accounts", counts["accounts"]),
        _kpi("Segments", "segments", len(overview.segment_sizes)),
        _kpi("Audiences in sync", "audiences_in_sync", in_sync, f"of {len(overview.syncs):,} synced"),
        _kpi("Checkpoints passed", "checkpoints_passed", passed, f"of {len(overview.checkpoints):,}"),
    ])
    return (f'<section class="sandbox" data-sandbox="{_e(overview.label)}">{heading}<div class="kpis">{kpis}</div>'
            f'<div class="layout"><div class="column">{_segments_card(overview)}{_syncs_card(overview)}</div>'
            f'<div class="column">{_checkpoints_card(overview, site)}{_freshness_card(overview)}</div></div>'
            '</section>')


STYLE = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --panel:#fff; --bg:#f1f5f9; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:var(--bg); }
header { padding:16px 28px 12px; background:var(--panel); border-bottom:1px solid var(--line); }
header h1 { margin:0; font-size:22px; letter-spacing:-.01em; }
header p { margin:4px 0 0; color:var(--muted); }
main { padding:8px 28px 32px; }
.sandbox-head { display:flex; align-items:baseline; gap:12px; margin:16px 0 10px; }
.sandbox-head h2 { margin:0; font-size:18px; }
code { color:var(--muted); font-size:12px; }
.kpis { display:grid; grid-template-columns:repeat(5,minmax(0,1fr)); gap:12px; margin-bottom:12px; }
.kpi, .card { background:var(--panel); border:1px solid var(--line); border-radius:10px; }
.kpi { padding:10px 16px; }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.kpi .value { font-size:26px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.kpi .note { color:var(--muted); font-size:12px; }
.layout { display:grid; grid-template-columns:minmax(0,1.55fr) minmax(0,1fr); gap:12px; align-items:start; }
.column { display:grid; gap:12px; }
.card { padding:14px 16px; overflow-x:auto; }
.card h3 { margin:0 0 10px; font-size:14px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th { text-align:left; color:var(--muted); font-weight:500; font-size:12px; border-bottom:1px solid var(--line);
     padding:6px 8px; white-space:nowrap; }
td { padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
tr:last-child td { border-bottom:none; }
td.num { text-align:right; white-space:nowrap; }
.sub { color:var(--muted); font-size:12px; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:550;
         white-space:nowrap; }
.badge.good { background:#dcfce7; color:#166534; } .badge.bad { background:#fee2e2; color:#991b1b; }
.badge.warn { background:#fef3c7; color:#92400e; } .badge.info { background:#dbeafe; color:#1e40af; }
.badge.muted { background:#f1f5f9; color:#475569; }
.rate, .when { white-space:nowrap; }
td.when { font-size:12.5px; }
.meter { display:inline-block; width:44px; height:6px; background:#e2e8f0; border-radius:3px; margin-right:6px;
         vertical-align:middle; overflow:hidden; }
.meter span { display:block; height:100%; background:var(--accent); }
.chart { display:block; max-width:100%; height:auto; }
.chart .grid { stroke:#e2e8f0; } .chart .tick { fill:#64748b; font-size:11px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:8px; }
.empty { color:var(--muted); margin:4px 0; }
.foot { margin:10px 0 0; font-size:12px; color:var(--muted); }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
"""


def render_page(overviews: list[SandboxOverview], site: Path | None = None,
                generated_at: datetime | None = None) -> str:
    site = site or data_docs_dir()
    generated_at = generated_at or datetime.now(timezone.utc)
    sections = "".join(sandbox_section(o, site) for o in overviews)
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>B2B CDP</title><style>{STYLE}</style></head><body>'
            '<header><h1>B2B CDP</h1><p>Profiles, audiences, destinations and guardrails per sandbox · '
            f'as of {_e(_moment(generated_at))} (times in UTC)</p></header><main>{sections}</main></body></html>')


def overview_page() -> str:
    """The whole page, read from the warehouse now, for every sandbox of the configuration."""
    return render_page([sandbox_overview(s) for s in load_config().sandboxes()])


# ------------------------------------------------------------------------------ the app

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#2563eb" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="9" cy="8" r="3.2"/>'
        '<path d="M3 20c0-3.3 2.7-6 6-6s6 2.7 6 6"/><path d="M16 4.5a3.2 3.2 0 0 1 0 6.9M18 14.3c1.9.8 3 2.9 3 '
        '5.7"/></svg>')


def create_app():
    """The FastAPI app serving the view (`/`), its nav icon and the Data Docs site."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, Response

    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    signed_in = [Depends(requires_access_view(AccessView.WEBSITE))]
    app = FastAPI(title="B2B CDP", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=signed_in)
    def overview() -> str:
        return overview_page()

    @app.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml")

    @app.get("/data-docs/{path:path}", dependencies=signed_in)
    def data_docs(path: str) -> FileResponse:
        site = data_docs_dir().resolve()
        target = (site / path).resolve()
        if not target.is_relative_to(site) or not target.is_file():
            raise HTTPException(status_code=404, detail="no such Data Docs page")
        return FileResponse(target)

    return app
