"""Marketo Engage emulator for one munchkin id: identity, lead database, static lists, B2B objects,
bulk extract and usage stats, with Marketo's envelope (HTTP 200, success=false, quoted codes)."""

from __future__ import annotations

import base64
import copy
import secrets
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from . import marketo_activity as act
from .http import App, Request, Response, Router, file_response, json_response, text_response
from .marketo_bulk import BulkExports
from .marketo_catalog import (
    ACTIVITY_TYPE_IDS, B2B_OBJECTS, LEAD_DEFAULT_FIELDS, LEAD_FIELDS, LEAD_READ_ONLY, MarketoError,
    activity_types, display_name, field_catalog, guess_data_type,
)
from .persist import MutationLog, atomic_write_json, load_json
from .timeutil import central_day, format_marketo, parse_datetime

TOKEN_TTL_SECONDS = 3600
DEFAULT_DAILY_QUOTA = 50_000   # calls per day, reset at 00:00 America/Chicago
RATE_LIMIT_CALLS = 100         # calls ...
RATE_LIMIT_WINDOW = 20         # ... per sliding window of this many seconds
MAX_CONCURRENT = 10            # requests in flight at once
USAGE_DAYS_KEPT = 8
API_SOURCE = "Web service API"
MUTATIONS = ("upsert_lead", "delete_lead", "add_activity")
MAX_BATCH = 300            # lead database calls take at most 300 values / return at most 300 records
MAX_QUERY_MATCHES = 1000   # a filter matching more than this is refused with 1003
UPSERT_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
# A lead created by Sync Leads is not yet seen by a createOrUpdate lookup that arrives before the
# creating call has settled: Marketo's documented duplicate-lead hazard for concurrent upserts of
# one key. createOnly and updateOnly always see it (the documented way to avoid the hazard).
UPSERT_SETTLE_SECONDS = 2.0
B2B_PATH = "|".join(sorted((k.replace("/", "\\/") for k in B2B_OBJECTS), key=len, reverse=True))


def _request_id() -> str:
    return f"{secrets.token_hex(2)}#{int(time.time() * 1000):x}"


def _match_key(value):
    """Filter values arrive as text; Marketo matches them case-insensitively."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


def _as_int(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


class MarketoInstance(MutationLog, App):
    MUTATIONS, SYSTEM = MUTATIONS, "Marketo"
    max_body_bytes = 1024 * 1024

    def __init__(self, config: dict, *, now, client_id: str, client_secret: str,
                 state_dir: Path | None = None, clock=None, faults=None,
                 daily_quota: int = DEFAULT_DAILY_QUOTA, limiter_now=None,
                 rate_limit_calls: int | None = RATE_LIMIT_CALLS) -> None:
        config = copy.deepcopy(config)     # mutations must not leak into the scenario object
        self.munchkin_id = config["munchkin_id"]
        self.key = f"marketo:{self.munchkin_id}"
        self.crm = config.get("crm")
        self.now = now
        self.base_url: str | None = None
        self.client_id, self.client_secret = client_id, client_secret
        self.user_id = f"apis@{self.munchkin_id.lower()}.mktorest.com"
        self._created_at = format_marketo(clock or now())

        self.leads: list[dict] = config["leads"]
        self.leads_by_id = {lead["id"]: lead for lead in self.leads}
        self.lead_fields = field_catalog(LEAD_FIELDS, self.leads)
        self._lead_field_index = {name.lower(): name for name in self.lead_fields}
        self._lead_data_types: dict[str, str] | None = None   # see _lead_types
        self.activities: list[dict] = config["activities"]
        self.deleted_leads: list[dict] = act.scenario_deleted_entries(config.get("deleted_leads") or [],
                                                                      clock or now())
        self._last_activity_id = act.assign_ids(self.activities, self.deleted_leads)
        for entry in self.deleted_leads:
            entry.setdefault("marketoGUID", str(entry["id"]))
        self.objects = {path: config[spec["section"]] for path, spec in B2B_OBJECTS.items()}
        self.lists = {entry["id"]: entry for entry in config["static_lists"]}
        self.upsert_settle_seconds = UPSERT_SETTLE_SECONDS
        self._settling: dict[int, float] = {}    # lead id -> wall-clock time its creating upsert settles
        self.members: dict[int, list[int]] = {list_id: [] for list_id in self.lists}

        self.lock = threading.RLock()
        self.faults = faults
        self.call_count = 0                      # every counted call since start
        self.daily_quota = daily_quota
        self.rate_limit_calls = rate_limit_calls   # None switches the 20-second window off
        self._limiter_now = limiter_now or now
        self._daily_calls: dict[str, int] = {}   # Central day -> counted calls
        self._daily_errors: dict[str, Counter] = {}
        self._recent_calls: list[datetime] = []  # emulated times of the calls in the rate window
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.token_ttl = TOKEN_TTL_SECONDS
        self._tokens: dict[str, datetime] = {}   # token -> emulated expiry
        self._current_token: str | None = None
        self._renames: dict[str, dict[str, str]] = {}   # field_renamed faults: object -> {old: new}
        self._mutations: list[dict] = []         # replayed on restart

        file_stem = self.key.replace(":", "_")
        self._state_path = state_dir / f"{file_stem}.json" if state_dir else None
        self.exports = BulkExports(self, state_dir / f"{file_stem}.exports" if state_dir else None)
        self._load_state()
        self.exports.build_indexes()
        self._lead_types()
        self.router = self._build_router()

    # ------------------------------------------------------------------------------- state

    def _load_state(self) -> None:
        state = load_json(self._state_path) if self._state_path else None
        if not state:
            return
        for mutation in state.get("mutations") or []:
            self._apply_mutation(mutation["action"], mutation["args"], parse_datetime(mutation["at"]))
            self._mutations.append(mutation)
        for list_id, member_ids in (state.get("lists") or {}).items():
            if int(list_id) in self.members:
                self.members[int(list_id)] = [i for i in member_ids if i in self.leads_by_id]
        self.exports.load_state(state.get("exports") or {})

    def save_state(self) -> None:
        if self._state_path is None:
            return
        atomic_write_json(self._state_path, {
            "lists": {str(k): v for k, v in self.members.items()},
            "exports": self.exports.to_state(),
            "mutations": self._mutations,
        })

    # ------------------------------------------------------------------------------- lookups used by bulk

    def lead_field(self, name: str) -> str | None:
        return self._lead_field_index.get(str(name).lower())

    def static_list(self, list_id) -> dict:
        entry = self.lists.get(_as_int(list_id))
        if entry is None:
            raise MarketoError("1013", "Static list not found")
        return entry

    def static_list_by_name(self, name) -> dict | None:
        return next((entry for entry in self.lists.values() if entry["name"] == name), None)

    def list_members(self, list_id: int) -> list[int]:
        return list(self.members.get(list_id, []))

    def add_static_list(self, list_id: int, name: str) -> None:
        """A static list a marketer made (in the UI, or through the Asset API this emulator leaves out)."""
        with self.lock:
            self.lists[list_id] = {"id": list_id, "name": name}
            self.members.setdefault(list_id, [])

    # ------------------------------------------------------------------------------- dispatch

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.arg("_method"):
            # Marketo's tunnel for long query strings: POST ...?_method=GET with the query in the body.
            request.method = request.arg("_method").upper()
            if request.content_type == "application/x-www-form-urlencoded":
                for name, values in request.form().items():
                    request.query.setdefault(name, []).extend(values)
        outage = self._fault("take", "http_5xx")
        if outage:
            return text_response("Service Unavailable", status=outage["status"],
                                 content_type="text/html;charset=UTF-8")
        latency = self._fault("take", "latency")
        if request.path == "/identity/oauth/token" and request.method in ("GET", "POST"):
            if latency:
                time.sleep(latency["seconds"])
            with self.lock:
                return self._token(request)
        if not request.path.startswith(("/rest/", "/bulk/")):
            return text_response("Not Found", status=404)
        route = self.router.match(request.method, request.path)
        if route is None:
            return text_response("Not Found", status=404)
        handler, params = route
        request.params = params
        with self._in_flight_lock:
            self._in_flight += 1
            crowded = self._in_flight > MAX_CONCURRENT
        try:
            if crowded:
                with self.lock:
                    self._count_call(self.now())
                    return self._failure("615", "Concurrent access limit reached")
            if latency:
                time.sleep(latency["seconds"])
            with self.lock:
                problem = self._check_token(request)
                if problem:
                    return self._failure(*problem)   # 601/602 do not count, as in Marketo
                refusal = self._admit()
                if refusal:
                    return self._failure(*refusal)
                try:
                    return handler(request)
                except MarketoError as exc:
                    return self._failure(exc.code, exc.message)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    # ------------------------------------------------------------------------------- limits

    def _fault(self, how: str, name: str, match=None):
        if self.faults is None:
            return None
        return getattr(self.faults, how)(self.key, name, match)

    def _count_call(self, now: datetime) -> None:
        self.call_count += 1
        day = central_day(now)
        self._daily_calls[day] = self._daily_calls.get(day, 0) + 1
        self._recent_calls.append(self._limiter_now())
        if len(self._daily_calls) > USAGE_DAYS_KEPT:
            for old in sorted(self._daily_calls)[:-USAGE_DAYS_KEPT]:
                del self._daily_calls[old]

    def _admit(self):
        """Count this call; (code, message) when a limit refuses it. Refusals (606/607/615) are not
        among the codes the docs exempt from quota and rate, so they count too."""
        now, instant = self.now(), self._limiter_now()
        window_start = instant - timedelta(seconds=RATE_LIMIT_WINDOW)
        self._recent_calls = [t for t in self._recent_calls if t > window_start]
        in_window = sum(1 for t in self._recent_calls if t <= instant)
        today = self._daily_calls.get(central_day(now), 0)
        self._count_call(now)
        limit = self.rate_limit_calls
        if self._fault("take", "rate_limit_burst") is not None or (limit is not None and in_window >= limit):
            return "606", f"Max rate limit '{limit or RATE_LIMIT_CALLS}' exceeded with in '{RATE_LIMIT_WINDOW}' secs"
        if today >= self.daily_quota:
            return "607", "Daily quota reached"
        return None

    def calls_today(self) -> int:
        with self.lock:
            return self._daily_calls.get(central_day(self.now()), 0)

    def set_daily_quota(self, calls: int) -> None:
        self.daily_quota = int(calls)

    @property
    def bytes_exported_today(self) -> int:
        with self.lock:
            return self.exports.bytes_exported_today

    def _build_router(self) -> Router:
        r = Router()
        r.add("GET", r"/rest/v1/leads\.json", self._get_leads)
        r.add("POST", r"/rest/v1/leads\.json", self._sync_leads)
        r.add("GET", r"/rest/v1/lead/(?P<lead_id>[^/]+)\.json", self._get_lead)
        r.add("GET", r"/rest/v1/leads/describe\.json", self._describe_leads)
        r.add("GET", r"/rest/v1/activities/types\.json", self._activity_types)
        r.add("GET", r"/rest/v1/activities/pagingtoken\.json", self._paging_token)
        r.add("GET", r"/rest/v1/activities\.json", self._get_activities)
        r.add("GET", r"/rest/v1/activities/leadchanges\.json", self._lead_changes)
        r.add("GET", r"/rest/v1/activities/deletedleads\.json", self._deleted_leads)
        r.add("GET", r"/rest/v1/stats/usage\.json", self._usage)
        r.add("GET", r"/rest/v1/stats/usage/last7days\.json", self._usage_last7days)
        r.add("GET", r"/rest/v1/stats/errors\.json", self._errors)
        r.add("GET", r"/rest/v1/stats/errors/last7days\.json", self._errors_last7days)
        r.add("GET", r"/rest/v1/lists\.json", self._get_lists)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)\.json", self._get_list)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._list_leads)
        r.add("POST", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._add_to_list)
        r.add("DELETE", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._remove_from_list)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads/ismember\.json", self._is_member)
        r.add("GET", rf"/rest/v1/(?P<obj>{B2B_PATH})/describe\.json", self._describe_object)
        r.add("GET", rf"/rest/v1/(?P<obj>{B2B_PATH})\.json", self._query_objects)
        r.add("POST", rf"/rest/v1/(?P<obj>{B2B_PATH})\.json", self._sync_objects)
        r.add("POST", rf"/rest/v1/(?P<obj>{B2B_PATH})/delete\.json", self._delete_objects)
        bulk = r"/bulk/v1/(?P<obj>leads|activities)/export"
        r.add("POST", bulk + r"/create\.json", self._export_create)
        r.add("GET", bulk + r"\.json", self._export_list)
        r.add("POST", bulk + r"/(?P<export_id>[^/]+)/enqueue\.json", self._export_enqueue)
        r.add("GET", bulk + r"/(?P<export_id>[^/]+)/status\.json", self._export_status)
        r.add("POST", bulk + r"/(?P<export_id>[^/]+)/cancel\.json", self._export_cancel)
        r.add("GET", bulk + r"/(?P<export_id>[^/]+)/file\.json", self._export_file)
        return r

    # ------------------------------------------------------------------------------- envelope

    def _ok(self, result, **extra) -> Response:
        body = {"requestId": _request_id(), "result": result, "success": True}
        body.update({k: v for k, v in extra.items() if v is not None})
        return json_response(body)

    def _failure(self, code: str, message: str) -> Response:
        errors = self._daily_errors.setdefault(central_day(self.now()), Counter())
        errors[code] += 1
        if len(self._daily_errors) > USAGE_DAYS_KEPT:
            for old in sorted(self._daily_errors)[:-USAGE_DAYS_KEPT]:
                del self._daily_errors[old]
        return json_response({"requestId": _request_id(), "success": False,
                              "errors": [{"code": code, "message": message}]})

    # ------------------------------------------------------------------------------- identity

    def _token(self, request: Request) -> Response:
        params = {k: v[0] for k, v in request.query.items() if v}
        if request.method == "POST" and request.content_type in ("", "application/x-www-form-urlencoded"):
            params.update({k: v[0] for k, v in request.form().items() if v})
        if params.get("grant_type") != "client_credentials":
            return json_response({"error": "invalid_request", "error_description": "Invalid grant type"}, 400)
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return json_response({"error": "unauthorized", "error_description": "Bad client credentials"}, 401)
        now = self.now()
        token = self._current_token
        if token is None or self._tokens[token] <= now:
            # A new token only once the previous one has expired; until then the same one comes back.
            token = f"{uuid.uuid4()}:ab"
            self._tokens[token] = now + timedelta(seconds=self.token_ttl)
            self._current_token = token
        # Whole seconds left, minus one as Marketo reports it (a fresh token says 3599); round() keeps
        # float noise in expiry - now from turning 3600 into 3601 or 3599.
        expires_in = max(0, round((self._tokens[token] - now).total_seconds()) - 1)
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": expires_in,
                              "scope": self.user_id})

    def _check_token(self, request: Request):
        header = request.header("authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.arg("access_token")
        if not token or token not in self._tokens:
            return "601", "Access token invalid"
        if self._tokens[token] <= self.now():
            return "602", "Access token expired"
        return None

    def expire_tokens(self) -> int:
        """The token_expiry fault: every token issued so far expires now (602 from the next call)."""
        with self.lock:
            now = self.now()
            for token in self._tokens:
                self._tokens[token] = min(self._tokens[token], now)
            return len(self._tokens)

    # ------------------------------------------------------------------------------- request parsing

    @staticmethod
    def _csv_arg(request: Request, name: str) -> list[str]:
        values = []
        for raw in request.args(name):
            values.extend(v.strip() for v in raw.split(",") if v.strip())
        return values

    @staticmethod
    def _batch_size(request: Request) -> int:
        raw = request.arg("batchSize")
        if raw in (None, ""):
            return MAX_BATCH
        size = _as_int(raw)
        if size is None or not 1 <= size <= MAX_BATCH:
            raise MarketoError("1003", f"Invalid batchSize '{raw}', expected 1 to {MAX_BATCH}")
        return size

    def _page(self, items: list, request: Request) -> tuple[list, str | None]:
        size = self._batch_size(request)
        offset = 0
        token = request.arg("nextPageToken")
        if token:
            try:
                kind, _, number = base64.b32decode(token.encode()).decode().partition(":")
                offset = int(number)
                if kind != "offset" or offset < 0:
                    raise ValueError(token)
            except ValueError:
                raise MarketoError("1003", "Invalid nextPageToken") from None
        end = offset + size
        next_token = base64.b32encode(f"offset:{end}".encode()).decode() if end < len(items) else None
        return items[offset:end], next_token

    def _fields(self, request: Request, resolve, default: list[str]) -> list[str]:
        names = self._csv_arg(request, "fields")
        if not names:
            return list(default)
        fields = []
        for name in names:
            canonical = resolve(name)
            if canonical is None:
                raise MarketoError("1006", f"Field '{name}' not found")
            fields.append(canonical)
        return fields

    def _filter_values(self, request: Request) -> list[str]:
        values = self._csv_arg(request, "filterValues")
        if not values:
            raise MarketoError("1003", "filterValues is required")
        if len(values) > MAX_BATCH:
            raise MarketoError("1003", f"Too many filterValues ({len(values)}), the maximum is {MAX_BATCH}")
        return values

    def _lead_ids(self, request: Request) -> list:
        ids = self._csv_arg(request, "id")
        if not ids and request.body:
            try:
                body = request.json()
            except ValueError:
                raise MarketoError("609", "Invalid JSON") from None
            entries = body.get("input") if isinstance(body, dict) else None
            if not isinstance(entries, list):
                raise MarketoError("1003", "input must be a list of {\"id\": leadId}")
            ids = [entry.get("id") if isinstance(entry, dict) else None for entry in entries]
        if not ids:
            raise MarketoError("1003", "id is required")
        if len(ids) > MAX_BATCH:
            raise MarketoError("1003", f"Too many ids ({len(ids)}), the maximum is {MAX_BATCH}")
        return ids

    # ------------------------------------------------------------------------------- leads

    def _get_leads(self, request: Request) -> Response:
        filter_type = request.arg("filterType")
        if not filter_type:
            raise MarketoError("1003", "filterType is required")
        field = self.lead_field(filter_type)
        if field is None:
            raise MarketoError("1003", f"Invalid filterType '{filter_type}'")
        wanted = {_match_key(v) for v in self._filter_values(request)}
        fields = self._fields(request, self.lead_field, self._default_lead_fields())
        matches = [lead for lead in self.leads if _match_key(lead.get(field)) in wanted]
        if len(matches) > MAX_QUERY_MATCHES:
            raise MarketoError("1003", f"Too many results match the filter (more than {MAX_QUERY_MATCHES})")
        page, token = self._page(matches, request)
        return self._ok([self._project_lead(lead, fields) for lead in page], nextPageToken=token)

    def duplicate_leads(self, field: str = "email") -> dict[str, list[int]]:
        """Lookup values held by more than one lead (what concurrent upserts of one key leave)."""
        with self.lock:
            by_value: dict[str, list[int]] = {}
            for lead in self.leads:
                if lead.get(field) not in (None, ""):
                    by_value.setdefault(_match_key(lead[field]), []).append(lead["id"])
            return {value: ids for value, ids in by_value.items() if len(ids) > 1}

    def _sync_leads(self, request: Request) -> Response:
        """Sync Leads: createOrUpdate (default) | createOnly | updateOnly | createDuplicate on
        lookupField (default email), at most 300 records; one result per record, in order."""
        body, records = self._write_body(request)
        action = body.get("action") or "createOrUpdate"
        if action not in UPSERT_ACTIONS:
            raise MarketoError("1003", f"Invalid action '{action}'")
        lookup = self.lead_field(body.get("lookupField") or "email")
        if lookup is None:
            raise MarketoError("1003", f"Invalid lookupField '{body.get('lookupField')}'")
        if lookup == "id" and action != "updateOnly":
            raise MarketoError("1003", "id can be the lookupField of updateOnly only")
        now, at, result = time.monotonic(), self.now(), []
        for record in records:
            if not isinstance(record, dict) or record.get(lookup) in (None, ""):
                result.append({"status": "skipped", "reasons": [
                    {"code": "1003", "message": f"Value for lookupField '{lookup}' not specified"}]})
                continue
            unknown = next((name for name in record if self.lead_field(name) is None), None)
            if unknown is not None:
                result.append({"status": "skipped", "reasons": [
                    {"code": "1006", "message": f"Field '{unknown}' not found"}]})
                continue
            matches = [] if action == "createDuplicate" else [
                lead for lead in self.leads if _match_key(lead.get(lookup)) == _match_key(record[lookup])
                and (action != "createOrUpdate" or self._settling.get(lead["id"], 0) <= now)]
            if matches and action == "createOnly":
                result.append(_skipped(matches[0]["id"], "1005", "Lead already exists"))
                continue
            if not matches and action == "updateOnly":
                result.append({"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]})
                continue
            if len(matches) > 1:
                result.append({"status": "skipped", "reasons": [
                    {"code": "1007", "message": "Multiple lead match lookup criteria"}]})
                continue
            fields = {k: v for k, v in record.items() if k not in ("id", "createdAt", "updatedAt")}
            if matches:
                fields["id"] = matches[0]["id"]
            lead = self._apply_mutation("upsert_lead", {"fields": fields}, at)
            self._mutations.append({"action": "upsert_lead", "args": {"fields": {**fields, "id": lead["id"]}},
                                    "at": at.isoformat()})
            if not matches:
                self._settling[lead["id"]] = now + self.upsert_settle_seconds
            result.append({"id": lead["id"], "status": "updated" if matches else "created"})
        self._persist()
        return self._ok(result)

    @staticmethod
    def _project_lead(lead: dict, fields: list[str]) -> dict:
        out = {"id": lead["id"]}   # Marketo always returns the lead id
        for name in fields:
            out[name] = lead.get(name)
        return out

    def _describe_leads(self, request: Request) -> Response:
        result = []
        types = self._lead_types()
        for number, name in enumerate(self.lead_fields, start=1):
            data_type = types[name]
            entry = {"id": number, "displayName": display_name(name), "dataType": data_type}
            if data_type in ("string", "email"):
                entry["length"] = 255
            read_only = name in LEAD_READ_ONLY
            entry["rest"] = {"name": name, "readOnly": read_only}
            entry["soap"] = {"name": name[:1].upper() + name[1:], "readOnly": read_only}
            result.append(entry)
        return self._ok(result)

    def _lead_types(self) -> dict[str, str]:
        """Each lead field's type, as describe reports it: a pass over every lead per field, so
        worked out when the instance starts and again after leads change, not on every call."""
        if self._lead_data_types is None:
            self._lead_data_types = {name: guess_data_type(name, [lead.get(name) for lead in self.leads])
                                     for name in self.lead_fields}
        return self._lead_data_types

    def _activity_types(self, request: Request) -> Response:
        return self._ok(activity_types())

    def _default_lead_fields(self) -> list[str]:
        renames = self._renames.get("leads", {})
        return [renames.get(name, name) for name in LEAD_DEFAULT_FIELDS]

    def _get_lead(self, request: Request) -> Response:
        lead = self.leads_by_id.get(_as_int(request.params["lead_id"]))
        fields = self._fields(request, self.lead_field, self._default_lead_fields())
        return self._ok([self._project_lead(lead, fields)] if lead else [])

    # ------------------------------------------------------------------------------- usage

    def _usage_days(self, days: int) -> list[str]:
        today = datetime.fromisoformat(central_day(self.now())).date()
        return [(today - timedelta(days=n)).isoformat() for n in range(days)]

    def _usage_entry(self, day: str) -> dict:
        count = self._daily_calls.get(day, 0)
        return {"date": day, "total": count, "users": [{"userId": self.user_id, "count": count}] if count else []}

    def _errors_entry(self, day: str) -> dict:
        errors = self._daily_errors.get(day, Counter())
        return {"date": day, "total": sum(errors.values()),
                "errors": [{"errorCode": code, "count": n} for code, n in sorted(errors.items())]}

    def _usage(self, request: Request) -> Response:
        return self._ok([self._usage_entry(self._usage_days(1)[0])])

    def _usage_last7days(self, request: Request) -> Response:
        return self._ok([self._usage_entry(day) for day in self._usage_days(7)])

    def _errors(self, request: Request) -> Response:
        return self._ok([self._errors_entry(self._usage_days(1)[0])])

    def _errors_last7days(self, request: Request) -> Response:
        return self._ok([self._errors_entry(day) for day in self._usage_days(7)])

    # ------------------------------------------------------------------------------- activities

    def _lead_scope(self, request: Request):
        """The leads a listId / leadIds parameter narrows an activity query to (None: all)."""
        list_id, lead_ids = request.arg("listId"), self._csv_arg(request, "leadIds")
        if list_id and lead_ids:
            raise MarketoError("1003", "Use listId or leadIds, not both")
        if list_id:
            return set(self.members[self.static_list(list_id)["id"]])
        if lead_ids:
            if len(lead_ids) > act.MAX_LEAD_IDS:
                raise MarketoError("1003", f"Too many leadIds ({len(lead_ids)}), the maximum is {act.MAX_LEAD_IDS}")
            ids = {_as_int(v) for v in lead_ids}
            if None in ids:
                raise MarketoError("1003", "leadIds must be integers")
            return ids
        return None

    def _paging_token(self, request: Request) -> Response:
        position = act.since_position(request.arg("sinceDatetime"))
        return json_response({"requestId": _request_id(), "success": True,
                              "nextPageToken": act.encode_token(position)})

    def _get_activities(self, request: Request) -> Response:
        position = act.decode_token(request.arg("nextPageToken"))
        raw_types = self._csv_arg(request, "activityTypeIds")
        if not raw_types:
            raise MarketoError("1003", "activityTypeIds is required")
        if len(raw_types) > act.MAX_ACTIVITY_TYPES:
            raise MarketoError("1003", f"Too many activityTypeIds ({len(raw_types)}), the maximum is "
                                       f"{act.MAX_ACTIVITY_TYPES}")
        type_ids = {_as_int(v) for v in raw_types}
        if None in type_ids:
            raise MarketoError("1003", "activityTypeIds must be integers")
        scope = self._lead_scope(request)
        candidates = [a for a in self.activities if a.get("activityTypeId") in type_ids
                      and (scope is None or a.get("leadId") in scope)]
        page, following, more = act.page_after(candidates, position, self._batch_size(request))
        return json_response(act.envelope(_request_id(), [act.rest_view(a) for a in page], following, more))

    def _lead_changes(self, request: Request) -> Response:
        position = act.decode_token(request.arg("nextPageToken"))
        names = self._csv_arg(request, "fields")
        if not names:
            raise MarketoError("1003", "fields is required")
        wanted = set()
        for name in names:
            canonical = self.lead_field(name)
            if canonical is None:
                raise MarketoError("1006", f"Field '{name}' not found")
            wanted.add(canonical)
        scope = self._lead_scope(request)
        candidates = [a for a in self.activities
                      if (a.get("activityTypeId") == act.NEW_LEAD_TYPE
                          or (a.get("activityTypeId") == act.CHANGE_DATA_VALUE_TYPE and a.get("_field") in wanted))
                      and (scope is None or a.get("leadId") in scope)]
        page, following, more = act.page_after(candidates, position, self._batch_size(request))
        return json_response(act.envelope(_request_id(), [act.lead_change_view(a) for a in page], following, more))

    def _deleted_leads(self, request: Request) -> Response:
        position = act.decode_token(request.arg("nextPageToken"))
        page, following, more = act.page_after(self.deleted_leads, position, self._batch_size(request))
        return json_response(act.envelope(_request_id(), [act.deleted_view(a) for a in page], following, more))

    # ------------------------------------------------------------------------------- static lists

    def _list_view(self, entry: dict) -> dict:
        view = {"id": entry["id"], "name": entry["name"]}
        for key in ("description", "programName"):
            if entry.get(key) is not None:
                view[key] = entry[key]
        view.update({"workspaceName": "Default", "createdAt": self._created_at, "updatedAt": self._created_at})
        return view

    def _get_lists(self, request: Request) -> Response:
        ids = {_as_int(v) for v in self._csv_arg(request, "id")}
        names = set(self._csv_arg(request, "name"))
        programs = set(self._csv_arg(request, "programName"))
        entries = [e for e in self.lists.values()
                   if (not ids or e["id"] in ids) and (not names or e["name"] in names)
                   and (not programs or e.get("programName") in programs)]
        page, token = self._page(entries, request)
        return self._ok([self._list_view(e) for e in page], nextPageToken=token)

    def _get_list(self, request: Request) -> Response:
        return self._ok([self._list_view(self.static_list(request.params["list_id"]))])

    def _list_leads(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        fields = self._fields(request, self.lead_field, self._default_lead_fields())
        members = [self.leads_by_id[i] for i in self.members[entry["id"]] if i in self.leads_by_id]
        page, token = self._page(members, request)
        return self._ok([self._project_lead(lead, fields) for lead in page], nextPageToken=token)

    def _add_to_list(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        members = self.members[entry["id"]]
        present = set(members)       # lists hold up to millions of leads: no linear scan per id
        result = []
        for raw in self._lead_ids(request):
            lead_id = _as_int(raw)
            if lead_id not in self.leads_by_id:
                result.append(_skipped(raw if lead_id is None else lead_id, "1004", "Lead not found"))
                continue
            if lead_id not in present:
                members.append(lead_id)
                present.add(lead_id)
            result.append({"id": lead_id, "status": "added"})   # re-adding a member is "added" too
        self.save_state()
        return self._ok(result)

    def _remove_from_list(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        members = self.members[entry["id"]]
        present, removed = set(members), set()
        result = []
        for raw in self._lead_ids(request):
            lead_id = _as_int(raw)
            if lead_id not in self.leads_by_id:
                result.append(_skipped(raw if lead_id is None else lead_id, "1004", "Lead not found"))
            elif lead_id not in present:
                result.append(_skipped(lead_id, "1015", "Lead not in list"))
            else:
                present.discard(lead_id)
                removed.add(lead_id)
                result.append({"id": lead_id, "status": "removed"})
        if removed:
            members[:] = [i for i in members if i not in removed]
        self.save_state()
        return self._ok(result)

    def _is_member(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        members = set(self.members[entry["id"]])
        result = []
        for raw in self._lead_ids(request):
            lead_id = _as_int(raw)
            if lead_id not in self.leads_by_id:
                result.append(_skipped(raw if lead_id is None else lead_id, "1004", "Lead not found"))
            else:
                result.append({"id": lead_id, "status": "memberof" if lead_id in members else "notmemberof"})
        return self._ok(result)

    # ------------------------------------------------------------------------------- companies & co.

    def _object_fields(self, obj: str) -> list[str]:
        renames = self._renames.get(obj, {})
        return field_catalog([renames.get(n, n) for n in B2B_OBJECTS[obj]["fields"]], self.objects[obj])

    def _available(self, obj: str) -> None:
        # "Opportunity Role APIs are only exposed for subscriptions which do not have a native CRM sync
        # enabled": on a synced instance the resource does not exist.
        if obj == "opportunities/roles" and self.crm:
            raise MarketoError("610", "Requested resource not found")

    def _describe_object(self, request: Request) -> Response:
        obj = request.params["obj"]
        self._available(obj)
        spec = B2B_OBJECTS[obj]
        fields = []
        for name in self._object_fields(obj):
            data_type = guess_data_type(name, [r.get(name) for r in self.objects[obj]])
            entry = {"name": name, "displayName": display_name(name), "dataType": data_type}
            if data_type == "string":
                entry["length"] = 255
            entry["updateable"] = name not in (spec["idField"], "createdAt", "updatedAt") and self.crm is None
            fields.append(entry)
        return self._ok([{
            "name": spec["name"], "description": f"{spec['name']} object",
            "createdAt": self._created_at, "updatedAt": self._created_at,
            "idField": spec["idField"], "dedupeFields": list(spec["dedupeFields"]),
            "searchableFields": [list(s) for s in spec["searchableFields"]], "fields": fields,
        }])

    def _query_objects(self, request: Request) -> Response:
        obj = request.params["obj"]
        self._available(obj)
        spec = B2B_OBJECTS[obj]
        filter_type = request.arg("filterType")
        searchable = {s[0] for s in spec["searchableFields"] if len(s) == 1} | set(spec["dedupeFields"][:1])
        if not filter_type:
            raise MarketoError("1003", "filterType is required")
        if filter_type not in searchable:
            raise MarketoError("1003", f"Invalid filterType '{filter_type}', searchable fields are "
                                       f"{', '.join(sorted(searchable))}")
        values = self._filter_values(request)
        known = {name.lower(): name for name in self._object_fields(obj)}
        default = [spec["idField"], *spec["dedupeFields"], "updatedAt", "createdAt"]
        fields = self._fields(request, lambda n: known.get(str(n).lower()), default)
        records, taken = [], set()
        # Results follow the order of filterValues, as Marketo's do.
        for value in values:
            key = _match_key(value)
            for record in self.objects[obj]:
                if _match_key(record.get(filter_type)) == key and id(record) not in taken:
                    taken.add(id(record))
                    records.append(record)
        page, token = self._page(records, request)
        result = []
        for seq, record in enumerate(page):
            # A requested field that is not returned is implied null (Marketo leaves nulls out here).
            item = {"seq": seq}
            item.update({name: record[name] for name in fields if record.get(name) is not None})
            result.append(item)
        return self._ok(result, nextPageToken=token)

    def _writable(self, obj: str) -> None:
        self._available(obj)
        if obj in ("companies", "opportunities") and self.crm:
            crm = self.crm.get("type") or "CRM"
            raise MarketoError("1003", f"{B2B_OBJECTS[obj]['name']} API is read-only: this subscription has "
                                       f"native {crm} CRM sync enabled")

    def _write_body(self, request: Request) -> tuple[dict, list]:
        try:
            body = request.json()
        except ValueError:
            raise MarketoError("609", "Invalid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("input"), list):
            raise MarketoError("1003", "input is required: a list of records")
        if len(body["input"]) > MAX_BATCH:
            raise MarketoError("1003", f"Too many records ({len(body['input'])}), the maximum is {MAX_BATCH}")
        return body, body["input"]

    def _key_fields(self, obj: str, by: str, parameter: str) -> list[str]:
        spec = B2B_OBJECTS[obj]
        if by == "dedupeFields":
            return list(spec["dedupeFields"])
        if by == "idField":
            return [spec["idField"]]
        raise MarketoError("1003", f"Invalid {parameter} '{by}', expected dedupeFields or idField")

    def _find_object(self, obj: str, keys: list[str], record: dict):
        wanted = [_match_key(record.get(k)) for k in keys]
        return next((r for r in self.objects[obj] if [_match_key(r.get(k)) for k in keys] == wanted), None)

    def _sync_objects(self, request: Request) -> Response:
        obj = request.params["obj"]
        self._writable(obj)
        spec = B2B_OBJECTS[obj]
        body, records = self._write_body(request)
        action = body.get("action") or "createOrUpdate"
        if action not in ("createOrUpdate", "createOnly", "updateOnly"):
            raise MarketoError("1003", f"Invalid action '{action}'")
        keys = self._key_fields(obj, body.get("dedupeBy") or "dedupeFields", "dedupeBy")
        now = format_marketo(self.now())
        result = []
        for seq, record in enumerate(records):
            if not isinstance(record, dict) or any(record.get(k) in (None, "") for k in keys):
                result.append({"seq": seq, "status": "skipped", "reasons": [
                    {"code": "1003", "message": f"Value for required field(s) {', '.join(keys)} not specified"}]})
                continue
            existing = self._find_object(obj, keys, record)
            if existing is None and (action == "updateOnly" or keys == [spec["idField"]]):
                result.append(_skipped_record(seq, "1013", "Record not found"))
                continue
            if existing is not None and action == "createOnly":
                result.append({"seq": seq, "status": "skipped",
                               "reasons": [{"code": "1005", "message": "Record already exists"}]})
                continue
            if existing is None:
                existing = {}
                if spec["idField"] == "id":
                    existing["id"] = max((r.get("id") or 0 for r in self.objects[obj]), default=0) + 1
                else:
                    existing[spec["idField"]] = str(uuid.uuid4())
                existing["createdAt"] = now
                self.objects[obj].append(existing)
                status = "created"
            else:
                status = "updated"
            existing.update({k: v for k, v in record.items() if k not in (spec["idField"], "createdAt", "updatedAt")})
            existing["updatedAt"] = now
            result.append({"seq": seq, "status": status, spec["idField"]: existing[spec["idField"]]})
        return self._ok(result)

    def _delete_objects(self, request: Request) -> Response:
        obj = request.params["obj"]
        self._writable(obj)
        spec = B2B_OBJECTS[obj]
        body, records = self._write_body(request)
        keys = self._key_fields(obj, body.get("deleteBy") or "dedupeFields", "deleteBy")
        result = []
        for seq, record in enumerate(records):
            existing = self._find_object(obj, keys, record) if isinstance(record, dict) else None
            if existing is None:
                result.append(_skipped_record(seq, "1013", "Record not found"))
                continue
            self.objects[obj].remove(existing)
            result.append({"seq": seq, spec["idField"]: existing[spec["idField"]], "status": "deleted"})
        return self._ok(result)

    # ------------------------------------------------------------------------------- bulk extract

    def _export_create(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            raise MarketoError("609", "Invalid JSON") from None
        job = self.exports.create(request.params["obj"], body)
        return self._ok([self.exports.public(job)])

    def _export_enqueue(self, request: Request) -> Response:
        job = self.exports.enqueue(request.params["obj"], request.params["export_id"])
        return self._ok([self.exports.public(job)])

    def _export_status(self, request: Request) -> Response:
        job = self.exports.poll(request.params["obj"], request.params["export_id"])
        return self._ok([self.exports.public(job)])

    def _export_cancel(self, request: Request) -> Response:
        job = self.exports.cancel(request.params["obj"], request.params["export_id"])
        return self._ok([self.exports.public(job)])

    def _export_list(self, request: Request) -> Response:
        jobs = self.exports.list(request.params["obj"], self._csv_arg(request, "status"))
        page, token = self._page(jobs, request)
        return self._ok([self.exports.public(job) for job in page], nextPageToken=token)

    def _export_file(self, request: Request) -> Response:
        found = self.exports.file(request.params["obj"], request.params["export_id"])
        if found is None:
            # Unlike the rest of the API: a plain-text 404 until the file exists (or for a bad id).
            return text_response("File not found: the export job is unknown or not completed", status=404)
        path, content_type = found
        response = file_response(path, content_type, request.header("range"))
        if response.status in (200, 206):
            cut = self._fault("take", "connection_reset")
            if cut:
                after = cut["after_bytes"]
                response.abort_after = response.content_length // 2 if after is None else after
        return response

    # ------------------------------------------------------------------------------- mutations

    def upsert_lead(self, fields: dict) -> dict:
        """Create (new id when none is given) or update a lead at the emulated now; records a New Lead (12)
        or one Change Data Value (13) per changed field."""
        return self._mutate("upsert_lead", {"fields": dict(fields)})

    def delete_lead(self, lead_id: int) -> dict:
        """Remove a lead; its Delete Lead (37) entry appears in Get Deleted Leads."""
        return self._mutate("delete_lead", {"lead_id": lead_id})

    def add_activity(self, lead_id: int, activity_type_id: int, primary_attribute_value=None,
                     attributes=None, primary_attribute_value_id=None, campaign_id=None) -> dict:
        """Record an activity at the emulated now (new id and marketoGUID)."""
        return self._mutate("add_activity", {
            "lead_id": lead_id, "activity_type_id": activity_type_id,
            "primary_attribute_value": primary_attribute_value, "attributes": attributes,
            "primary_attribute_value_id": primary_attribute_value_id, "campaign_id": campaign_id})

    def _leads_changed(self) -> None:
        self._lead_data_types = None
        self.exports.leads_changed()

    def _persist(self) -> None:
        self.save_state()

    def close(self) -> None:
        """Let go of files kept outside the state folder (export files of an instance without one)."""
        self.exports.close()

    def _apply_mutation(self, action: str, args: dict, at: datetime) -> dict:
        if action in ("upsert_lead", "delete_lead"):
            self._leads_changed()
        if action == "upsert_lead":
            return self._upsert_lead(args["fields"], at)
        if action == "delete_lead":
            return self._delete_lead(args["lead_id"], at)
        if action == "add_activity":
            return self._add_activity(args, at)
        raise ValueError(f"unknown Marketo mutation {action!r}")

    def _next_activity_id(self) -> int:
        self._last_activity_id += 1
        return self._last_activity_id

    def _record(self, lead_id: int, type_id: int, at: datetime, primary_id=None, primary=None,
                attributes=None, campaign_id=None, **extra) -> dict:
        activity_id = self._next_activity_id()
        activity = {"id": activity_id, "marketoGUID": str(activity_id), "leadId": lead_id,
                    "activityDate": format_marketo(at), "activityTypeId": type_id, "campaignId": campaign_id,
                    "primaryAttributeValueId": primary_id, "primaryAttributeValue": primary,
                    "attributes": act.attribute_list(attributes)}
        activity.update(extra)
        self.activities.append(activity)
        return activity

    def _upsert_lead(self, fields: dict, at: datetime) -> dict:
        if not isinstance(fields, dict):
            raise ValueError("upsert_lead takes a dict of lead fields")
        renames = self._renames.get("leads", {})
        incoming = {}
        for name, value in fields.items():
            canonical = self.lead_field(renames.get(name, name)) or renames.get(name, name)
            incoming[canonical] = value
        stamp = format_marketo(at)
        lead_id = incoming.pop("id", None)
        lead = self.leads_by_id.get(lead_id) if lead_id is not None else None
        for name in incoming:
            if self.lead_field(name) is None:
                self.lead_fields.append(name)
                self._lead_field_index[name.lower()] = name
        if lead is None:
            if lead_id is None:
                lead_id = max(self.leads_by_id, default=0) + 1
            elif isinstance(lead_id, bool) or not isinstance(lead_id, int):
                raise ValueError(f"lead id must be an integer, got {lead_id!r}")
            lead = {"id": lead_id, **incoming, "createdAt": incoming.get("createdAt") or stamp, "updatedAt": stamp}
            self.leads.append(lead)
            self.leads_by_id[lead_id] = lead
            self._record(lead_id, act.NEW_LEAD_TYPE, at, attributes=[
                {"name": "Source Type", "value": API_SOURCE}, {"name": "Created Date", "value": stamp[:10]}])
            return lead
        for name, value in incoming.items():
            if name in ("createdAt", "updatedAt") or lead.get(name) == value:
                continue
            old = lead.get(name)
            lead[name] = value
            number = self.lead_fields.index(name) + 1
            self._record(lead_id, act.CHANGE_DATA_VALUE_TYPE, at, primary_id=number, primary=display_name(name),
                         attributes=[{"name": "New Value", "value": value}, {"name": "Old Value", "value": old},
                                     {"name": "Reason", "value": API_SOURCE}, {"name": "Source", "value": API_SOURCE}],
                         _field=name)
        lead["updatedAt"] = stamp
        return lead

    def _delete_lead(self, lead_id, at: datetime) -> dict:
        lead = self.leads_by_id.pop(lead_id, None)
        if lead is None:
            raise ValueError(f"no lead {lead_id!r} in {self.key}")
        # A new list, not a removal in place: an export being written holds positions in the old one.
        self.leads = [kept for kept in self.leads if kept is not lead]
        for members in self.members.values():
            if lead_id in members:
                members.remove(lead_id)
        entry = act.deleted_entry(lead, self._next_activity_id(), format_marketo(at))
        self.deleted_leads.append(entry)
        return act.deleted_view(entry)

    def _add_activity(self, args: dict, at: datetime) -> dict:
        type_id = args["activity_type_id"]
        if isinstance(type_id, bool) or not isinstance(type_id, int):
            raise ValueError(f"activity_type_id must be an integer, got {type_id!r}")
        if type_id == act.DELETE_LEAD_TYPE:
            raise ValueError("use delete_lead for Delete Lead (37) activities")
        if args["lead_id"] not in self.leads_by_id:
            raise ValueError(f"no lead {args['lead_id']!r} in {self.key}")
        if type_id not in ACTIVITY_TYPE_IDS and type_id < 100000:
            raise ValueError(f"unknown activity type {type_id} (standard ids: see /rest/v1/activities/types.json; "
                             f"custom ones are 100000 and up)")
        return act.rest_view(self._record(
            args["lead_id"], type_id, at, primary_id=args.get("primary_attribute_value_id"),
            primary=args.get("primary_attribute_value"), attributes=args.get("attributes"),
            campaign_id=args.get("campaign_id")))

    # ------------------------------------------------------------------------------- field_renamed

    def rename_field(self, obj: str, old: str, new: str) -> None:
        """The field_renamed fault: from now on `old` appears as `new` (describe, REST, bulk files)."""
        with self.lock:
            if old.lower() == "id" or (obj in B2B_OBJECTS and old == B2B_OBJECTS[obj]["idField"]):
                raise ValueError("field_renamed cannot rename the id field")
            if obj == "leads":
                current = self.lead_field(old)
                if current is None:
                    raise ValueError(f"{self.key}: leads have no field {old!r}")
                if self.lead_field(new) is not None:
                    raise ValueError(f"{self.key}: leads already have a field {new!r}")
                for lead in self.leads:
                    if current in lead:
                        lead[new] = lead.pop(current)
                self.lead_fields[self.lead_fields.index(current)] = new
                self._lead_field_index = {name.lower(): name for name in self.lead_fields}
                for activity in self.activities:
                    if activity.get("_field") == current:
                        activity["_field"] = new
            elif obj in self.objects:
                known = {name.lower(): name for name in self._object_fields(obj)}
                current = known.get(old.lower())
                if current is None:
                    raise ValueError(f"{self.key}: {obj} have no field {old!r}")
                if new.lower() in known:
                    raise ValueError(f"{self.key}: {obj} already have a field {new!r}")
                for record in self.objects[obj]:
                    if current in record:
                        record[new] = record.pop(current)
            else:
                raise ValueError(f"field_renamed on Marketo takes object leads or one of {', '.join(self.objects)}")
            if obj == "leads":
                self._leads_changed()
            renames = self._renames.setdefault(obj, {})
            original = next((k for k, v in renames.items() if v == current), current)
            if original == new:
                renames.pop(original, None)
            else:
                renames[original] = new


def _skipped_record(seq: int, code: str, message: str) -> dict:
    return {"seq": seq, "status": "skipped", "reasons": [{"code": code, "message": message}]}


def _skipped(lead_id, code: str, message: str) -> dict:
    return {"id": lead_id, "status": "skipped", "reasons": [{"code": code, "message": message}]}
