"""Marketo Engage emulator for one munchkin id: identity, lead database, static lists, B2B objects,
bulk extract and usage stats, with Marketo's envelope (HTTP 200, success=false, quoted codes)."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from pathlib import Path

from .http import App, Request, Response, Router, bytes_response, json_response, text_response
from .marketo_bulk import BulkExports
from .marketo_catalog import (
    B2B_OBJECTS, LEAD_DEFAULT_FIELDS, LEAD_FIELDS, LEAD_READ_ONLY, MarketoError, activity_types,
    display_name, field_catalog, guess_data_type,
)
from .persist import atomic_write_json, load_json
from .timeutil import central_day, format_marketo

TOKEN_TTL_SECONDS = 3600
MAX_BATCH = 300            # lead database calls take at most 300 values / return at most 300 records
MAX_QUERY_MATCHES = 1000   # a filter matching more than this is refused with 1003
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


class MarketoInstance(App):
    max_body_bytes = 1024 * 1024

    def __init__(self, config: dict, *, now, client_id: str, client_secret: str,
                 state_dir: Path | None = None, clock=None) -> None:
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
        self.activities: list[dict] = config["activities"]
        self.objects = {path: config[spec["section"]] for path, spec in B2B_OBJECTS.items()}
        self.lists = {entry["id"]: entry for entry in config["static_lists"]}
        self.members: dict[int, list[int]] = {list_id: [] for list_id in self.lists}

        self.lock = threading.RLock()
        self.call_count = 0
        self.token_ttl = TOKEN_TTL_SECONDS
        self._tokens: dict[str, float] = {}      # token -> monotonic expiry
        self._current_token: str | None = None

        file_stem = self.key.replace(":", "_")
        self._state_path = state_dir / f"{file_stem}.json" if state_dir else None
        self.exports = BulkExports(self, state_dir / f"{file_stem}.exports" if state_dir else None)
        self._load_state()
        self.router = self._build_router()

    # ------------------------------------------------------------------------------- state

    def _load_state(self) -> None:
        state = load_json(self._state_path) if self._state_path else None
        if not state:
            return
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

    # ------------------------------------------------------------------------------- dispatch

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.arg("_method"):
            # Marketo's tunnel for long query strings: POST ...?_method=GET with the query in the body.
            request.method = request.arg("_method").upper()
            if request.content_type == "application/x-www-form-urlencoded":
                for name, values in request.form().items():
                    request.query.setdefault(name, []).extend(values)
        if request.path == "/identity/oauth/token" and request.method in ("GET", "POST"):
            with self.lock:
                return self._token(request)
        if not request.path.startswith(("/rest/", "/bulk/")):
            return text_response("Not Found", status=404)
        route = self.router.match(request.method, request.path)
        if route is None:
            return text_response("Not Found", status=404)
        handler, params = route
        request.params = params
        with self.lock:
            problem = self._check_token(request)
            if problem:
                return self._failure(*problem)
            self.call_count += 1       # calls refused for the token (601/602) do not count, as in Marketo
            try:
                return handler(request)
            except MarketoError as exc:
                return self._failure(exc.code, exc.message)

    def _build_router(self) -> Router:
        r = Router()
        r.add("GET", r"/rest/v1/leads\.json", self._get_leads)
        r.add("GET", r"/rest/v1/leads/describe\.json", self._describe_leads)
        r.add("GET", r"/rest/v1/activities/types\.json", self._activity_types)
        r.add("GET", r"/rest/v1/stats/usage\.json", self._usage)
        r.add("GET", r"/rest/v1/lists\.json", self._get_lists)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)\.json", self._get_list)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._list_leads)
        r.add("POST", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._add_to_list)
        r.add("DELETE", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads\.json", self._remove_from_list)
        r.add("GET", r"/rest/v1/lists/(?P<list_id>[^/]+)/leads/ismember\.json", self._is_member)
        r.add("GET", rf"/rest/v1/(?P<obj>{B2B_PATH})/describe\.json", self._describe_object)
        r.add("GET", rf"/rest/v1/(?P<obj>{B2B_PATH})\.json", self._query_objects)
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
        now = time.monotonic()
        token = self._current_token
        if token is None or self._tokens.get(token, 0) <= now:
            # A new token only once the previous one has expired; until then the same one comes back.
            token = f"{uuid.uuid4()}:ab"
            self._tokens[token] = now + self.token_ttl
            self._current_token = token
        # Whole seconds left, minus one as Marketo reports it (a fresh token says 3599); round() keeps
        # float noise in expiry - now from turning 3600 into 3601 or 3599.
        expires_in = max(0, round(self._tokens[token] - now) - 1)
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": expires_in,
                              "scope": self.user_id})

    def _check_token(self, request: Request):
        header = request.header("authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.arg("access_token")
        if not token or token not in self._tokens:
            return "601", "Access token invalid"
        if self._tokens[token] <= time.monotonic():
            return "602", "Access token expired"
        return None

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
        fields = self._fields(request, self.lead_field, LEAD_DEFAULT_FIELDS)
        matches = [lead for lead in self.leads if _match_key(lead.get(field)) in wanted]
        if len(matches) > MAX_QUERY_MATCHES:
            raise MarketoError("1003", f"Too many results match the filter (more than {MAX_QUERY_MATCHES})")
        page, token = self._page(matches, request)
        return self._ok([self._project_lead(lead, fields) for lead in page], nextPageToken=token)

    @staticmethod
    def _project_lead(lead: dict, fields: list[str]) -> dict:
        out = {"id": lead["id"]}   # Marketo always returns the lead id
        for name in fields:
            out[name] = lead.get(name)
        return out

    def _describe_leads(self, request: Request) -> Response:
        result = []
        for number, name in enumerate(self.lead_fields, start=1):
            data_type = guess_data_type(name, [lead.get(name) for lead in self.leads])
            entry = {"id": number, "displayName": display_name(name), "dataType": data_type}
            if data_type in ("string", "email"):
                entry["length"] = 255
            read_only = name in LEAD_READ_ONLY
            entry["rest"] = {"name": name, "readOnly": read_only}
            entry["soap"] = {"name": name[:1].upper() + name[1:], "readOnly": read_only}
            result.append(entry)
        return self._ok(result)

    def _activity_types(self, request: Request) -> Response:
        return self._ok(activity_types())

    def _usage(self, request: Request) -> Response:
        return self._ok([{"date": central_day(self.now()), "total": self.call_count,
                          "users": [{"userId": self.user_id, "count": self.call_count}]}])

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
        fields = self._fields(request, self.lead_field, LEAD_DEFAULT_FIELDS)
        members = [self.leads_by_id[i] for i in self.members[entry["id"]] if i in self.leads_by_id]
        page, token = self._page(members, request)
        return self._ok([self._project_lead(lead, fields) for lead in page], nextPageToken=token)

    def _add_to_list(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        members = self.members[entry["id"]]
        result = []
        for raw in self._lead_ids(request):
            lead_id = _as_int(raw)
            if lead_id not in self.leads_by_id:
                result.append(_skipped(raw if lead_id is None else lead_id, "1004", "Lead not found"))
                continue
            if lead_id not in members:
                members.append(lead_id)
            result.append({"id": lead_id, "status": "added"})   # re-adding a member is "added" too
        self.save_state()
        return self._ok(result)

    def _remove_from_list(self, request: Request) -> Response:
        entry = self.static_list(request.params["list_id"])
        members = self.members[entry["id"]]
        result = []
        for raw in self._lead_ids(request):
            lead_id = _as_int(raw)
            if lead_id not in self.leads_by_id:
                result.append(_skipped(raw if lead_id is None else lead_id, "1004", "Lead not found"))
            elif lead_id not in members:
                result.append(_skipped(lead_id, "1015", "Lead not in list"))
            else:
                members.remove(lead_id)
                result.append({"id": lead_id, "status": "removed"})
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
        return field_catalog(B2B_OBJECTS[obj]["fields"], self.objects[obj])

    def _describe_object(self, request: Request) -> Response:
        obj = request.params["obj"]
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
        data, content_type = found
        return bytes_response(data, content_type, request.header("range"))


def _skipped(lead_id, code: str, message: str) -> dict:
    return {"id": lead_id, "status": "skipped", "reasons": [{"code": code, "message": message}]}
