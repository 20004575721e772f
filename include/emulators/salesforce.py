"""Salesforce emulator for one org: OAuth client credentials, REST query/queryAll with cursor paging,
describe, limits, and the Sforce-Limit-Info usage header on every data API response."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from datetime import datetime, timedelta, timezone

from . import soql
from .http import App, Request, Response, Router, json_response, text_response
from .persist import MutationLog, atomic_write_json, load_json
from .salesforce_bulk import BulkQueryJobs
from .scenario import SALESFORCE_OBJECTS
from .timeutil import format_salesforce, parse_datetime, try_parse_datetime

DEFAULT_API_ALLOTTED = 100_000
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_OPEN_CURSORS = 200
VERSIONS = [f"{major}.0" for major in range(31, 67)]
SYSTEM_FIELDS = ["Id", "IsDeleted", "SystemModstamp"]
USAGE_WINDOW = timedelta(hours=24)          # the daily allocation is a rolling 24 hours
DELETED_WINDOW = timedelta(days=15)         # getDeleted covers 15 days
UPDATED_WINDOW = timedelta(days=30)         # getUpdated covers 30 days
MUTATIONS = ("upsert_record", "delete_record", "commit_late")

# Standard fields of the standard objects (scenarios/FORMAT.md), known even with no records.
STANDARD_FIELDS = {
    "Account": ["Name", "Website", "Industry", "AnnualRevenue"],
    "Contact": ["AccountId", "Email", "FirstName", "LastName", "Title"],
    "Lead": ["Email", "FirstName", "LastName", "Title", "Company", "IsConverted", "ConvertedAccountId",
             "ConvertedContactId"],
    "Opportunity": ["AccountId", "Name", "Amount", "StageName", "IsClosed", "IsWon", "CloseDate"],
    "OpportunityContactRole": ["OpportunityId", "ContactId", "Role", "IsPrimary"],
    "Campaign": ["Name"],
    "CampaignMember": ["CampaignId", "LeadId", "ContactId", "Status", "HasResponded", "FirstRespondedDate"],
}
KEY_PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
                "OpportunityContactRole": "00K", "Campaign": "701", "CampaignMember": "00v"}
STANDARD_TYPES = {"Id": "id", "IsDeleted": "boolean", "SystemModstamp": "datetime", "Email": "email",
                  "Website": "url", "Amount": "currency", "AnnualRevenue": "currency", "CloseDate": "date",
                  "FirstRespondedDate": "date"}
# The literal kinds a comparison on each field type accepts (null is always accepted).
LITERALS_FOR_TYPE = {"boolean": {"boolean"}, "double": {"number"}, "currency": {"number"}, "int": {"number"},
                     "datetime": {"datetime"}, "date": {"date"}}
STRING_TYPES = {"id", "reference", "string", "email", "url", "picklist", "textarea"}

_INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
_LIMIT_EXCEEDED = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
_NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def _label(version: str) -> str:
    # v59.0 was Winter '24; three releases a year.
    offset = int(float(version)) - 59
    season = ("Winter", "Spring", "Summer")[offset % 3]
    return f"{season} '{24 + offset // 3}"


def _field_type(name: str, values: list) -> str:
    if name in STANDARD_TYPES:
        return STANDARD_TYPES[name]
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if not present and re.match(r"(Is|Has)[A-Z]", name):
        return "boolean"
    if name.endswith("Id"):
        return "reference"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "double"
    if present and all(isinstance(v, str) and try_parse_datetime(v) for v in present):
        return "datetime"
    if present and all(isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for v in present):
        return "date"
    return "string"


def case_safe_id(id15: str) -> str:
    """The 18-character form of a 15-character Salesforce id (the case-safe suffix)."""
    alphabet = string.ascii_uppercase + "012345"
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, char in enumerate(id15[chunk * 5:chunk * 5 + 5]) if char.isupper())
        suffix += alphabet[bits]
    return id15 + suffix


class _SObject:
    """Schema and records of one object type in one org."""

    def __init__(self, name: str, records: list[dict]) -> None:
        self.name = name
        self.records = records
        self.renames: dict[str, str] = {}       # field_renamed faults: old -> new
        self.refresh()

    def refresh(self) -> None:
        standard = ["Id"] + STANDARD_FIELDS.get(self.name, ["Name"] if self.name.endswith("__c") else [])
        names = [self.renames.get(n, n) for n in standard] + ["IsDeleted", "SystemModstamp"]
        for record in self.records:
            names.extend(key for key in record if key not in names)
        self.fields = list(dict.fromkeys(names))
        self.index = {field.lower(): field for field in self.fields}
        self.types = {f: _field_type(f, [r.get(f) for r in self.records]) for f in self.fields}

    def rename(self, old: str, new: str) -> None:
        current = self.index.get(old.lower())
        if current is None:
            raise ValueError(f"{self.name} has no field {old!r}")
        if current in SYSTEM_FIELDS:
            raise ValueError(f"field_renamed cannot rename the system field {current}")
        if new.lower() in self.index:
            raise ValueError(f"{self.name} already has a field {new!r}")
        for record in self.records:
            if current in record:
                record[new] = record.pop(current)
        original = next((k for k, v in self.renames.items() if v == current), current)
        if original == new:
            self.renames.pop(original, None)
        else:
            self.renames[original] = new
        self.refresh()

    def resolve(self, written: str) -> str:
        if "." in written:
            head = written.split(".")[0]
            raise soql.SoqlError("INVALID_FIELD", f"Didn't understand relationship '{head}' in field path. "
                                                  "If you are attempting to use a custom relationship, be sure "
                                                  "to append the '__r' after the custom relationship name.")
        field = self.index.get(written.lower())
        if field is None:
            raise soql.SoqlError("INVALID_FIELD", f"No such column '{written}' on entity '{self.name}'. If you "
                                                  "are attempting to use a custom field, be sure to append the "
                                                  "'__c' after the custom field name. Please reference your WSDL "
                                                  "or the describe call for the appropriate names.")
        return field


class SalesforceOrg(MutationLog, App):
    MUTATIONS, SYSTEM = MUTATIONS, "Salesforce"
    def __init__(self, config: dict, *, client_id: str, client_secret: str, now=None, faults=None,
                 state_dir=None) -> None:
        config = copy.deepcopy(config)     # mutations must not leak into the scenario object
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.faults = faults
        self.org_id = config["org_id"]
        self.name = config.get("name") or self.org_id
        self.key = f"salesforce:{self.org_id}"
        self.base_url: str | None = None
        self.client_id, self.client_secret = client_id, client_secret
        self.user_id = "005" + self.org_id[3:]
        names = list(SALESFORCE_OBJECTS) + [n for n in config["objects"] if n not in SALESFORCE_OBJECTS]
        self.sobjects = {n: _SObject(n, config["objects"].get(n, [])) for n in names}
        self._object_index = {n.lower(): n for n in self.sobjects}

        self.lock = threading.RLock()
        self.call_count = 0                       # every counted call since start
        self.api_allotted = DEFAULT_API_ALLOTTED
        self._calls: list[datetime] = []          # emulated times of the calls of the last 24 hours
        self._tokens: dict[str, bool] = {}        # token -> still valid
        self._cursors: dict[str, dict] = {}
        self._id_counter = 0
        self._mutations: list[dict] = []
        self.bulk = BulkQueryJobs(self)
        self._state_path = state_dir / f"{self.key.replace(':', '_')}.json" if state_dir else None
        self._load_state()
        self.router = self._build_router()

    def _build_router(self) -> Router:
        r = Router()
        v = r"/services/data/v(?P<version>\d+\.\d)"
        r.add("GET", v + r"/?", self._resources)
        r.add("GET", v + r"/limits/?", self._limits)
        r.add("GET", v + r"/sobjects/?", self._describe_global)
        r.add("GET", v + r"/sobjects/(?P<object>\w+)/describe/?", self._describe)
        r.add("GET", v + r"/sobjects/(?P<object>\w+)/deleted/?", self._get_deleted)
        r.add("GET", v + r"/sobjects/(?P<object>\w+)/updated/?", self._get_updated)
        r.add("GET", v + r"/(?P<mode>query|queryAll)/?", self._query)
        r.add("GET", v + r"/(?P<mode>query|queryAll)/(?P<locator>01g[^/]+)", self._query_more)
        r.add("POST", v + r"/jobs/query/?", self.bulk.create)
        r.add("GET", v + r"/jobs/query/?", self.bulk.list)
        r.add("GET", v + r"/jobs/query/(?P<job_id>750\w+)/?", self.bulk.get)
        r.add("PATCH", v + r"/jobs/query/(?P<job_id>750\w+)/?", self.bulk.patch)
        r.add("DELETE", v + r"/jobs/query/(?P<job_id>750\w+)/?", self.bulk.delete)
        r.add("GET", v + r"/jobs/query/(?P<job_id>750\w+)/results/?", self.bulk.results)
        return r

    # ------------------------------------------------------------------------------- faults, usage

    def fault(self, how: str, name: str, match=None):
        if self.faults is None:
            return None
        return getattr(self.faults, how)(self.key, name, match)

    def api_usage(self) -> int:
        """Calls in the rolling 24 hours up to the emulated now."""
        now = self.now()
        self._calls = [t for t in self._calls if t > now - USAGE_WINDOW]
        return sum(1 for t in self._calls if t <= now)

    def expire_tokens(self) -> int:
        """The token_expiry fault: every session issued so far is invalid from now on (401)."""
        with self.lock:
            for token in self._tokens:
                self._tokens[token] = False
            return len(self._tokens)

    # ------------------------------------------------------------------------------- dispatch

    def handle(self, request: Request) -> Response:
        outage = self.fault("take", "http_5xx")
        if outage:
            return text_response("Service Unavailable", status=outage["status"], content_type="text/html;charset=UTF-8")
        latency = self.fault("take", "latency")
        if latency:
            time.sleep(latency["seconds"])
        if request.path == "/services/oauth2/token":
            if request.method != "POST":
                return json_response({"error": "invalid_request", "error_description": "must use HTTP POST"}, 400)
            with self.lock:
                return self._token(request)
        if request.path.rstrip("/") == "/services/data" and request.method == "GET":
            # The version list is public in Salesforce too.
            return self._with_usage(json_response(
                [{"label": _label(v), "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]))
        if not request.path.startswith("/services/data/"):
            return text_response("Not Found", status=404)
        with self.lock:
            if not self._authorised(request):
                return self._with_usage(json_response(_INVALID_SESSION, 401))
            if self.fault("take", "rate_limit_burst") is not None or self.api_usage() >= self.api_allotted:
                return self._with_usage(json_response(_LIMIT_EXCEEDED, 403))
            self.call_count += 1
            self._calls.append(self.now())
            route = self.router.match(request.method, request.path)
            if route is None or route[1]["version"] not in VERSIONS:
                return self._with_usage(json_response(_NOT_FOUND, 404))
            handler, request.params = route
            try:
                response = handler(request)
            except soql.SoqlError as exc:
                response = json_response([{"message": exc.message, "errorCode": exc.error_code}], 400)
            return self._with_usage(response)

    def _with_usage(self, response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage()}/{self.api_allotted}"
        return response

    # ------------------------------------------------------------------------------- OAuth

    def _token(self, request: Request) -> Response:
        params = {k: v[0] for k, v in request.form().items() if v}
        for k, v in request.query.items():
            params.setdefault(k, v[0])
        if params.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type", "error_description": "grant type not supported"},
                                 400)
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        alphabet = string.ascii_letters + string.digits + "._"
        token = f"{self.org_id}!" + "".join(secrets.choice(alphabet) for _ in range(96))
        self._tokens[token] = True
        issued_at = str(int(self.now().timestamp() * 1000))
        identity = f"{self.base_url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(hmac.new(self.client_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        return json_response({"access_token": token, "signature": signature, "scope": "api",
                              "instance_url": self.base_url, "id": identity, "token_type": "Bearer",
                              "issued_at": issued_at})

    def _authorised(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and self._tokens.get(token.strip(), False)

    # ------------------------------------------------------------------------------- resources

    def _resources(self, request: Request) -> Response:
        base = f"/services/data/v{request.params['version']}"
        return json_response({name: f"{base}/{name}" for name in ("limits", "query", "queryAll", "sobjects")})

    def _limits(self, request: Request) -> Response:
        return json_response({"DailyApiRequests": {"Max": self.api_allotted,
                                                   "Remaining": max(0, self.api_allotted - self.api_usage())}})

    def _describe_global(self, request: Request) -> Response:
        base = f"/services/data/v{request.params['version']}/sobjects"
        return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
            {"name": name, "label": name, "custom": name.endswith("__c"), "keyPrefix": KEY_PREFIXES.get(name),
             "queryable": True, "retrieveable": True, "deletable": False, "createable": False,
             "updateable": False,
             "urls": {"sobject": f"{base}/{name}", "describe": f"{base}/{name}/describe",
                      "rowTemplate": f"{base}/{name}/{{ID}}"}}
            for name in self.sobjects]})

    def _describe(self, request: Request) -> Response:
        name = self._object_index.get(request.params["object"].lower())
        if name is None:
            return json_response(_NOT_FOUND, 404)
        sobject = self.sobjects[name]
        return json_response({
            "name": name, "label": name, "custom": name.endswith("__c"), "keyPrefix": KEY_PREFIXES.get(name),
            "queryable": True, "replicateable": True,
            "fields": [{"name": f, "label": f, "type": sobject.types[f], "nillable": f not in SYSTEM_FIELDS,
                        "filterable": True, "sortable": True, "custom": f.endswith("__c")}
                       for f in sobject.fields],
        })

    # ------------------------------------------------------------------------------- query

    def _query(self, request: Request) -> Response:
        text = request.arg("q")
        if text is None:
            return json_response([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}],
                                 400)
        rows, count = self._execute(text, include_deleted=request.params["mode"] == "queryAll",
                                    version=request.params["version"])
        if count:
            return json_response({"totalSize": len(rows), "done": True, "records": []})
        cursor = {"rows": rows, "batch": self._batch_size(request), "version": request.params["version"]}
        return json_response(self._page(cursor, 0))

    def _query_more(self, request: Request) -> Response:
        locator_id, _, offset = request.params["locator"].rpartition("-")
        cursor = self._cursors.get(locator_id)
        if cursor is None or not offset.isdigit():
            return json_response([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}], 400)
        return json_response(self._page(cursor, int(offset), locator_id))

    def _page(self, cursor: dict, offset: int, locator_id: str | None = None) -> dict:
        rows = cursor["rows"]
        end = offset + cursor["batch"]
        body = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            if locator_id is None:
                locator_id = "01g" + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                                             for _ in range(15))
                self._cursors[locator_id] = cursor
                while len(self._cursors) > MAX_OPEN_CURSORS:   # Salesforce also caps open cursors
                    self._cursors.pop(next(iter(self._cursors)))
            body["nextRecordsUrl"] = f"/services/data/v{cursor['version']}/query/{locator_id}-{end}"
        elif locator_id is not None:
            self._cursors.pop(locator_id, None)
        body["records"] = rows[offset:end]
        return body

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.header("sforce-query-options") or ""
        match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
        if not match:
            return DEFAULT_BATCH
        return min(MAX_BATCH, max(MIN_BATCH, int(match.group(1))))   # Salesforce treats it as a hint

    def object_name(self, written: str) -> str:
        name = self._object_index.get(written.lower())
        if name is None:
            raise soql.SoqlError("INVALID_TYPE", f"sObject type '{written}' is not supported. If you are "
                                                 "attempting to use a custom object, be sure to append the '__c' "
                                                 "after the entity name. Please reference your WSDL or the describe "
                                                 "call for the appropriate names.")
        return name

    def parse_query(self, text: str) -> soql.Query:
        """Parse and validate (object, fields, literals) without running."""
        query = soql.parse(text)
        sobject = self.sobjects[self.object_name(query.object)]
        for written in query.referenced_fields():
            sobject.resolve(written)
        for written, op, literal in query.conditions():
            self._check_literal(sobject, sobject.resolve(written), op, literal)
        return query

    def select(self, text: str, include_deleted: bool) -> tuple[str, list[str], list[dict]]:
        """(object, canonical field names, matching records) of a SELECT."""
        query = self.parse_query(text)
        name = self.object_name(query.object)
        sobject = self.sobjects[name]
        rows = [record for record in sobject.records
                if (include_deleted or not record.get("IsDeleted"))
                and soql.matches(query.where, record, sobject.resolve)]
        rows = soql.sort_records(rows, query.order, sobject.resolve)[query.offset:]
        if query.limit is not None:
            rows = rows[:query.limit]
        return name, [sobject.resolve(f) for f in query.fields], rows

    def _execute(self, text: str, include_deleted: bool, version: str) -> tuple[list[dict], bool]:
        name, fields, rows = self.select(text, include_deleted)
        if soql.parse(text).count:
            return rows, True
        projected = []
        for record in rows:
            item = {"attributes": {"type": name,
                                   "url": f"/services/data/v{version}/sobjects/{name}/{record['Id']}"}}
            item.update({field: record.get(field) for field in fields})
            projected.append(item)
        return projected, False

    # ------------------------------------------------------------------------------- replication

    def _replication_window(self, request: Request, days: timedelta):
        """(start, end) of a getDeleted / getUpdated call, seconds dropped as Salesforce does."""
        values = {}
        for name in ("start", "end"):
            raw = request.arg(name)
            if not raw:
                raise soql.SoqlError("MISSING_ARGUMENT", f"{name} parameter is required")
            try:
                # An unencoded '+' of the offset arrives as a space.
                values[name] = parse_datetime(raw.strip().replace(" ", "+")).replace(second=0, microsecond=0)
            except ValueError:
                raise soql.SoqlError("INVALID_REPLICATION_DATE", f"{name} is not a valid date-time: {raw}") from None
        start, end = values["start"], values["end"]
        now = self.now()
        if start >= end:
            raise soql.SoqlError("INVALID_REPLICATION_DATE", "start date must chronologically precede end date")
        if start < now - days:
            raise soql.SoqlError("INVALID_REPLICATION_DATE",
                                 f"start date cannot be more than {days.days} days ago")
        return start, end, now

    def _replication_object(self, request: Request):
        name = self._object_index.get(request.params["object"].lower())
        if name is None:
            return None
        return self.sobjects[name]

    def _get_deleted(self, request: Request) -> Response:
        sobject = self._replication_object(request)
        if sobject is None:
            return json_response(_NOT_FOUND, 404)
        start, end, now = self._replication_window(request, DELETED_WINDOW)
        covered = min(end, now.replace(second=0, microsecond=0))
        deleted = []
        for record in sobject.records:
            moment = try_parse_datetime(record.get("SystemModstamp"))
            if record.get("IsDeleted") and moment is not None and start <= moment <= covered:
                deleted.append((moment, record["Id"]))
        deleted.sort()
        return json_response({
            "deletedRecords": [{"id": rid, "deletedDate": format_salesforce(moment)} for moment, rid in deleted],
            "earliestDateAvailable": format_salesforce((now - DELETED_WINDOW).replace(second=0, microsecond=0)),
            "latestDateCovered": format_salesforce(covered)})

    def _get_updated(self, request: Request) -> Response:
        sobject = self._replication_object(request)
        if sobject is None:
            return json_response(_NOT_FOUND, 404)
        start, end, now = self._replication_window(request, UPDATED_WINDOW)
        covered = min(end, now.replace(second=0, microsecond=0))
        ids = []
        for record in sobject.records:
            moment = try_parse_datetime(record.get("SystemModstamp"))
            if not record.get("IsDeleted") and moment is not None and start <= moment <= covered:
                ids.append((moment, record["Id"]))
        ids.sort()
        return json_response({"ids": [rid for _, rid in ids], "latestDateCovered": format_salesforce(covered)})

    # ------------------------------------------------------------------------------- mutations

    def upsert_record(self, obj: str, record: dict) -> dict:
        """Insert (new 18-character Id when none is given) or update a record; SystemModstamp = now."""
        return self._mutate("upsert_record", {"obj": obj, "record": dict(record)})

    def delete_record(self, obj: str, record_id: str) -> dict:
        """Soft-delete: IsDeleted = true, SystemModstamp = now; listed by getDeleted and queryAll."""
        return self._mutate("delete_record", {"obj": obj, "record_id": record_id})

    def commit_late(self, obj: str, record: dict, system_modstamp) -> dict:
        """Insert or update a record whose SystemModstamp is EARLIER than now: a transaction that
        committed after a cursor past its timestamp had already been read."""
        if isinstance(system_modstamp, datetime):
            system_modstamp = system_modstamp.isoformat()
        return self._mutate("commit_late", {"obj": obj, "record": dict(record), "system_modstamp": system_modstamp})

    def _mutation_args(self, action: str, args: dict) -> dict:
        if action == "delete_record" and "id" in args and "record_id" not in args:
            args = {k: v for k, v in args.items() if k != "id"} | {"record_id": args["id"]}
        return args

    def _persist(self) -> None:
        self._save_state()

    def _sobject_for_write(self, obj: str) -> _SObject:
        name = self._object_index.get(str(obj).lower())
        if name is None:
            if not re.fullmatch(r"[A-Za-z]\w*__c", str(obj)):
                raise ValueError(f"unknown object {obj!r} in {self.key} (custom objects end in __c)")
            name = str(obj)
            self.sobjects[name] = _SObject(name, [])
            self._object_index[name.lower()] = name
        return self.sobjects[name]

    def _new_id(self, name: str) -> str:
        self._id_counter += 1
        return case_safe_id(KEY_PREFIXES.get(name, "a00") + "E" + f"{self._id_counter:011d}")

    def _apply_mutation(self, action: str, args: dict, at: datetime) -> dict:
        sobject = self._sobject_for_write(args["obj"])
        if action == "delete_record":
            record = next((r for r in sobject.records if r.get("Id") == args["record_id"]), None)
            if record is None:
                raise ValueError(f"no {sobject.name} {args['record_id']!r} in {self.key}")
            record["IsDeleted"] = True
            record["SystemModstamp"] = format_salesforce(at)
            return record
        stamp = at
        if action == "commit_late":
            stamp = parse_datetime(args["system_modstamp"]) if isinstance(args["system_modstamp"], str) \
                else args["system_modstamp"]
            if stamp >= at:
                raise ValueError(f"commit_late: SystemModstamp {stamp.isoformat()} is not earlier than the "
                                 f"emulated now {at.isoformat()}")
        fields = {}
        for written, value in args["record"].items():
            name = sobject.renames.get(written, written)
            fields[sobject.index.get(name.lower(), name)] = value
        record_id = fields.pop("Id", None)
        record = next((r for r in sobject.records if r.get("Id") == record_id), None) if record_id else None
        if record is None:
            record = {"Id": record_id or self._new_id(sobject.name), "IsDeleted": False}
            sobject.records.append(record)
        record.update({k: v for k, v in fields.items() if k != "SystemModstamp"})
        record["SystemModstamp"] = format_salesforce(stamp)
        if any(name not in sobject.index.values() for name in record):
            sobject.refresh()
        return record

    def rename_field(self, obj: str, old: str, new: str) -> None:
        """The field_renamed fault: from now on `old` appears as `new` (describe, SOQL, Bulk results)."""
        with self.lock:
            name = self._object_index.get(str(obj).lower())
            if name is None:
                raise ValueError(f"unknown object {obj!r} in {self.key}")
            self.sobjects[name].rename(old, new)

    # ------------------------------------------------------------------------------- state

    def _load_state(self) -> None:
        state = load_json(self._state_path) if self._state_path else None
        for mutation in (state or {}).get("mutations") or []:
            self._apply_mutation(mutation["action"], mutation["args"], parse_datetime(mutation["at"]))
            self._mutations.append(mutation)

    def _save_state(self) -> None:
        if self._state_path is not None:
            atomic_write_json(self._state_path, {"mutations": self._mutations})

    @staticmethod
    def _check_literal(sobject: _SObject, field: str, op: str, literal: soql.Literal) -> None:
        if literal.kind == "null":
            return
        field_type = sobject.types[field]
        if op == "LIKE":
            if field_type not in STRING_TYPES:
                raise soql.SoqlError("INVALID_FIELD", f"invalid operator on {field_type} field: {field}")
            return
        if field_type in STRING_TYPES:
            if literal.kind != "string":
                raise soql.SoqlError("INVALID_FIELD", f"value of filter criterion for field '{field}' must be of "
                                                      "type string and should be enclosed in quotes")
            return
        allowed = LITERALS_FOR_TYPE.get(field_type)
        if allowed is not None and literal.kind not in allowed:
            soap_type = {"currency": "double", "datetime": "dateTime"}.get(field_type, field_type)
            raise soql.SoqlError("INVALID_FIELD", f"value of filter criterion for field '{field}' must be of type "
                                                  f"{soap_type} and should not be enclosed in quotes")
