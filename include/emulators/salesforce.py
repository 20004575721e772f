"""Salesforce emulator for one org: OAuth client credentials, REST query/queryAll with cursor paging,
describe, limits, and the Sforce-Limit-Info usage header on every data API response."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import threading
import time

from . import soql
from .http import App, Request, Response, Router, json_response, text_response
from .scenario import SALESFORCE_OBJECTS
from .timeutil import try_parse_datetime

DEFAULT_API_ALLOTTED = 100_000
DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_OPEN_CURSORS = 200
VERSIONS = [f"{major}.0" for major in range(31, 67)]
SYSTEM_FIELDS = ["Id", "IsDeleted", "SystemModstamp"]

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


class _SObject:
    """Schema and records of one object type in one org."""

    def __init__(self, name: str, records: list[dict]) -> None:
        self.name = name
        self.records = records
        names = ["Id"] + STANDARD_FIELDS.get(name, ["Name"] if name.endswith("__c") else [])
        names += ["IsDeleted", "SystemModstamp"]
        for record in records:
            names.extend(key for key in record if key not in names)
        self.fields = list(dict.fromkeys(names))
        self.index = {field.lower(): field for field in self.fields}
        self.types = {f: _field_type(f, [r.get(f) for r in records]) for f in self.fields}

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


class SalesforceOrg(App):
    def __init__(self, config: dict, *, client_id: str, client_secret: str) -> None:
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
        self.call_count = 0
        self.api_allotted = DEFAULT_API_ALLOTTED
        self._tokens: set[str] = set()
        self._cursors: dict[str, dict] = {}
        self.router = self._build_router()

    def _build_router(self) -> Router:
        r = Router()
        v = r"/services/data/v(?P<version>\d+\.\d)"
        r.add("GET", v + r"/?", self._resources)
        r.add("GET", v + r"/limits/?", self._limits)
        r.add("GET", v + r"/sobjects/?", self._describe_global)
        r.add("GET", v + r"/sobjects/(?P<object>\w+)/describe/?", self._describe)
        r.add("GET", v + r"/(?P<mode>query|queryAll)/?", self._query)
        r.add("GET", v + r"/(?P<mode>query|queryAll)/(?P<locator>01g[^/]+)", self._query_more)
        return r

    # ------------------------------------------------------------------------------- dispatch

    def handle(self, request: Request) -> Response:
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
            if self.call_count >= self.api_allotted:
                return self._with_usage(json_response(
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403))
            self.call_count += 1
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
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.call_count}/{self.api_allotted}"
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
        self._tokens.add(token)
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.base_url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(hmac.new(self.client_secret.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        return json_response({"access_token": token, "signature": signature, "scope": "api",
                              "instance_url": self.base_url, "id": identity, "token_type": "Bearer",
                              "issued_at": issued_at})

    def _authorised(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and token.strip() in self._tokens

    # ------------------------------------------------------------------------------- resources

    def _resources(self, request: Request) -> Response:
        base = f"/services/data/v{request.params['version']}"
        return json_response({name: f"{base}/{name}" for name in ("limits", "query", "queryAll", "sobjects")})

    def _limits(self, request: Request) -> Response:
        return json_response({"DailyApiRequests": {"Max": self.api_allotted,
                                                   "Remaining": max(0, self.api_allotted - self.call_count)}})

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

    def _execute(self, text: str, include_deleted: bool, version: str) -> tuple[list[dict], bool]:
        query = soql.parse(text)
        name = self._object_index.get(query.object.lower())
        if name is None:
            raise soql.SoqlError("INVALID_TYPE", f"sObject type '{query.object}' is not supported. If you are "
                                                 "attempting to use a custom object, be sure to append the '__c' "
                                                 "after the entity name. Please reference your WSDL or the describe "
                                                 "call for the appropriate names.")
        sobject = self.sobjects[name]
        for written in query.referenced_fields():
            sobject.resolve(written)
        for written, op, literal in query.conditions():
            self._check_literal(sobject, sobject.resolve(written), op, literal)
        rows = [record for record in sobject.records
                if (include_deleted or not record.get("IsDeleted"))
                and soql.matches(query.where, record, sobject.resolve)]
        rows = soql.sort_records(rows, query.order, sobject.resolve)[query.offset:]
        if query.limit is not None:
            rows = rows[:query.limit]
        if query.count:
            return rows, True
        fields = [sobject.resolve(f) for f in query.fields]
        projected = []
        for record in rows:
            item = {"attributes": {"type": name,
                                   "url": f"/services/data/v{version}/sobjects/{name}/{record['Id']}"}}
            item.update({field: record.get(field) for field in fields})
            projected.append(item)
        return projected, False

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
