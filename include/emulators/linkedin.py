"""LinkedIn Marketing API, Matched Audiences (DMP segments) — the part a CDP destination uses.

Base `/rest`, headers `LinkedIn-Version: YYYYMM` and `X-Restli-Protocol-Version: 2.0.0` on every
call, `Authorization: Bearer <token>` (3-legged OAuth; the emulator accepts its one access token).
A token that is unknown or expired (the `token_expiry` fault: LinkedIn's tokens live 60 days and are
renewed by the member authorising the app again, `issue_token()` here) answers 401
`serviceErrorCode` 65600 "Invalid access token", as LinkedIn does.

- `POST /rest/dmpSegments` creates a segment: 201, empty body, the id in the `x-restli-id` header.
  For `ready_after_seconds` (wall-clock; LinkedIn: about 5 s) after creation the segment's
  `/users` answer 404 "Could not find DMP segment", as the real service does.
- `GET /rest/dmpSegments?q=account&account=urn:li:sponsoredAccount:{id}[&sourceSegmentId=&sourcePlatform=]`
  finds segments; `GET /rest/dmpSegments/{id}` reads one.
- `POST /rest/dmpSegments/{id}/users` with `X-RestLi-Method: BATCH_CREATE` adds or removes users
  of a USER segment (`SHA256_EMAIL` ids: 64 lower-case hex digits); HTTP 200 with one status per
  element (201, or 400 with a message for an element that cannot be used). At most 5,000 elements
  per call.
- `POST /rest/dmpSegments/{id}/companies` (BATCH_CREATE) does the same for companies of a COMPANY
  segment: each element has `action` and at least one of `companyName`, `companyWebsiteDomain`
  (a bare domain: no scheme, `www.` or path), `companyEmailDomain`, `organizationUrn`
  (`urn:li:organization:<id>`) or `companyPageUrl`. A company is held as its identifying fields;
  a REMOVE must name the same fields as its ADD. Members of the other kind are refused (400).
- 429 with `Retry-After` when the `rate_limit_burst` fault is on, or beyond `users_per_minute`
  calls to `/users` (`companies_per_minute` to `/companies`, LinkedIn's 300) in a wall-clock minute.

State is in memory only (a restarted emulator has no segments).
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from datetime import datetime, timezone

from .http import App, Request, Response, Router, json_response

DEFAULT_ACCESS_TOKEN = "cdp-emulator-linkedin-token"
READY_AFTER_SECONDS = 5.0
MAX_ELEMENTS = 5000
USERS_PER_MINUTE = 300
COMPANIES_PER_MINUTE = 300
COMPANY_KEYS = ("companyName", "companyWebsiteDomain", "companyEmailDomain", "organizationUrn", "companyPageUrl")
COMPANY_LIMITS = {"companyName": 100, "companyPageUrl": 100}   # characters
ORGANIZATION_URN = re.compile(r"urn:li:organization:\d+")
BARE_DOMAIN = re.compile(r"(?!www\.)([a-z0-9-]+\.)+[a-z]{2,}")
RETRY_AFTER_SECONDS = 1
MIN_AUDIENCE = 300          # below this LinkedIn reports an audience size of 0
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
ACCOUNT_URN = re.compile(r"urn:li:sponsoredAccount:(\d+)")
VERSION = re.compile(r"\d{6}")


INVALID_TOKEN_SERVICE_ERROR = 65600


def _error(status: int, message: str, code: str | None = None, service_error: int | None = None) -> Response:
    body = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service_error is not None:
        body["serviceErrorCode"] = service_error
    return json_response(body, status)


class LinkedInAds(App):
    def __init__(self, *, access_token: str = DEFAULT_ACCESS_TOKEN, faults=None, now=None,
                 ready_after_seconds: float = READY_AFTER_SECONDS, users_per_minute: int | None = USERS_PER_MINUTE,
                 companies_per_minute: int | None = COMPANIES_PER_MINUTE, key: str = "linkedin:ads") -> None:
        self.key = key
        self.base_url: str | None = None
        self.access_token: str | None = access_token        # None once expired, until a new one is issued
        self._token_generation = 0
        self.faults = faults
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.ready_after_seconds = ready_after_seconds
        self.users_per_minute = users_per_minute
        self.companies_per_minute = companies_per_minute
        self.lock = threading.RLock()
        self.segments: dict[int, dict] = {}
        self.members: dict[int, set[str]] = {}
        self._created_at: dict[int, float] = {}
        self._member_calls: dict[str, collections.deque[float]] = {
            "users": collections.deque(), "companies": collections.deque()}
        self._next_id = 7_000_001
        self.call_count = 0
        self.calls: list[tuple[str, str]] = []      # (method, path) of every authorised call
        self.router = Router()
        self.router.add("POST", r"/rest/dmpSegments", self._create)
        self.router.add("GET", r"/rest/dmpSegments", self._find)
        self.router.add("GET", r"/rest/dmpSegments/(?P<id>\d+)", self._get)
        self.router.add("POST", r"/rest/dmpSegments/(?P<id>\d+)/users", self._users)
        self.router.add("POST", r"/rest/dmpSegments/(?P<id>\d+)/companies", self._companies)

    # ------------------------------------------------------------------------------- inspection

    def segment_members(self, segment_id: int | str) -> set[str]:
        with self.lock:
            return set(self.members.get(int(segment_id), set()))

    # ------------------------------------------------------------------------------- tokens

    def expire_tokens(self) -> int:
        """The token_expiry fault: the access token in force expires now (401 65600 from the next
        call) until `issue_token` hands out a new one."""
        with self.lock:
            expired = int(self.access_token is not None)
            self.access_token = None
            return expired

    def issue_token(self) -> str:
        """A new access token, the old one no longer accepted: the member authorised the app again."""
        with self.lock:
            self._token_generation += 1
            self.access_token = f"{DEFAULT_ACCESS_TOKEN}-{self._token_generation}"
            return self.access_token

    # ------------------------------------------------------------------------------- serving

    def fault(self, how: str, name: str, match=None):
        if self.faults is None:
            return None
        return getattr(self.faults, how)(self.key, name, match)

    def handle(self, request: Request) -> Response:
        outage = self.fault("take", "http_5xx")
        if outage:
            return _error(outage["status"], "Service Unavailable")
        latency = self.fault("take", "latency")
        if latency:
            time.sleep(latency["seconds"])
        if self.access_token is None or (request.header("authorization") or "") != f"Bearer {self.access_token}":
            return _error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", INVALID_TOKEN_SERVICE_ERROR)
        if not VERSION.fullmatch(request.header("linkedin-version") or ""):
            return _error(426, "A valid LinkedIn-Version header (YYYYMM) is required", "VERSION_MISSING")
        if request.header("x-restli-protocol-version") != "2.0.0":
            return _error(400, "X-Restli-Protocol-Version: 2.0.0 is required")
        route = self.router.match(request.method, request.path.rstrip("/"))
        if route is None:
            return _error(404, f"No resource at {request.path}")
        handler, request.params = route
        with self.lock:
            self.call_count += 1
            self.calls.append((request.method, request.path))
            if self.fault("take", "rate_limit_burst") is not None:
                return self._too_many()
            return handler(request)

    def _too_many(self) -> Response:
        response = _error(429, "Resource level throttle limit for calls to this resource is reached.",
                          "TOO_MANY_REQUESTS")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    # ------------------------------------------------------------------------------- segments

    def _create(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "The request body is not valid JSON")
        missing = [f for f in ("name", "account", "type", "sourcePlatform", "destinations") if not body.get(f)]
        if missing:
            return _error(400, f"Missing required fields: {', '.join(missing)}")
        if not ACCOUNT_URN.fullmatch(str(body["account"])):
            return _error(400, f"Invalid account URN {body['account']!r}")
        if body["type"] not in ("USER", "COMPANY"):
            return _error(400, f"Invalid type {body['type']!r}")
        segment_id = self._next_id
        self._next_id += 1
        self.segments[segment_id] = {
            "id": segment_id, "name": body["name"], "account": body["account"], "type": body["type"],
            "accessPolicy": body.get("accessPolicy", "PRIVATE"), "sourcePlatform": body["sourcePlatform"],
            "sourceSegmentId": body.get("sourceSegmentId"), "destinations": body["destinations"],
            "created": int(self.now().timestamp() * 1000)}
        self.members[segment_id] = set()
        self._created_at[segment_id] = time.monotonic()
        return Response(status=201, body=b"", headers={"x-restli-id": str(segment_id),
                                                       "Location": f"/rest/dmpSegments/{segment_id}"})

    def _view(self, segment_id: int) -> dict:
        size = len(self.members[segment_id])
        status = "BUILDING" if time.monotonic() - self._created_at[segment_id] < self.ready_after_seconds else "READY"
        return {**self.segments[segment_id], "status": status, "inputCount": size,
                "matchedCount": size, "audienceSize": size if size >= MIN_AUDIENCE else 0}

    def _find(self, request: Request) -> Response:
        if request.arg("q") != "account" or not request.arg("account"):
            return _error(400, "Finder q=account with an account URN is required")
        found = [self._view(i) for i, s in sorted(self.segments.items())
                 if s["account"] == request.arg("account")
                 and request.arg("sourceSegmentId") in (None, s["sourceSegmentId"])
                 and request.arg("sourcePlatform") in (None, s["sourcePlatform"])]
        return json_response({"elements": found, "paging": {"start": 0, "count": len(found), "total": len(found)}})

    def _segment(self, request: Request) -> int | None:
        segment_id = int(request.params["id"])
        if segment_id not in self.segments:
            return None
        if time.monotonic() - self._created_at[segment_id] < self.ready_after_seconds:
            return None       # just created: not yet visible to the members API
        return segment_id

    def _get(self, request: Request) -> Response:
        segment_id = int(request.params["id"])
        if segment_id not in self.segments:
            return _error(404, "Could not find DMP segment")
        return json_response(self._view(segment_id))

    def _users(self, request: Request) -> Response:
        return self._members(request, "users", "USER", self.users_per_minute, self._apply_user)

    def _companies(self, request: Request) -> Response:
        return self._members(request, "companies", "COMPANY", self.companies_per_minute, self._apply_company)

    def _members(self, request: Request, resource: str, segment_type: str, per_minute: int | None,
                 apply) -> Response:
        if (request.header("x-restli-method") or "").upper() != "BATCH_CREATE":
            return _error(400, "X-RestLi-Method: BATCH_CREATE is required")
        if per_minute is not None:
            calls, now = self._member_calls[resource], time.monotonic()
            while calls and now - calls[0] >= 60:
                calls.popleft()
            if len(calls) >= per_minute:
                return self._too_many()
            calls.append(now)
        segment_id = self._segment(request)
        if segment_id is None:
            return _error(404, "Could not find DMP segment")
        if self.segments[segment_id]["type"] != segment_type:
            return _error(400, f"DMP segment {segment_id} is a {self.segments[segment_id]['type']} segment: "
                               f"{resource} cannot be added to it")
        try:
            elements = (request.json() or {}).get("elements")
        except ValueError:
            return _error(400, "The request body is not valid JSON")
        if not isinstance(elements, list) or not elements:
            return _error(400, "elements must be a non-empty list")
        if len(elements) > MAX_ELEMENTS:
            return _error(400, f"At most {MAX_ELEMENTS} elements per request, got {len(elements)}")
        return json_response({"elements": [self._change(segment_id, e, apply) for e in elements]})

    def _change(self, segment_id: int, element, apply) -> dict:
        if not isinstance(element, dict) or element.get("action") not in ("ADD", "REMOVE"):
            return {"status": 400, "message": "action must be ADD or REMOVE"}
        keys, problem = apply(element)
        if problem:
            return {"status": 400, "message": problem}
        members = self.members[segment_id]
        if element["action"] == "ADD":
            members.update(keys)
        else:
            members.difference_update(keys)
        return {"status": 201}

    @staticmethod
    def _apply_user(element: dict) -> tuple[list[str], str | None]:
        hashes = [u.get("idValue") for u in element.get("userIds") or []
                  if isinstance(u, dict) and u.get("idType") == "SHA256_EMAIL"]
        if not hashes:
            return [], "userIds needs at least one supported id"
        if not all(isinstance(h, str) and SHA256_HEX.fullmatch(h) for h in hashes):
            return [], "SHA256_EMAIL must be 64 lower-case hexadecimal digits"
        return hashes, None

    @staticmethod
    def _apply_company(element: dict) -> tuple[list[str], str | None]:
        fields = {k: element[k] for k in COMPANY_KEYS if element.get(k) not in (None, "")}
        if not fields:
            return [], f"a company needs at least one of {', '.join(COMPANY_KEYS)}"
        if not all(isinstance(v, str) for v in fields.values()):
            return [], "company fields must be strings"
        for name, limit in COMPANY_LIMITS.items():
            if len(fields.get(name, "")) > limit:
                return [], f"{name} is longer than {limit} characters"
        if "organizationUrn" in fields and not ORGANIZATION_URN.fullmatch(fields["organizationUrn"]):
            return [], "organizationUrn must be urn:li:organization:<id>"
        for name in ("companyWebsiteDomain", "companyEmailDomain"):
            if name in fields and not BARE_DOMAIN.fullmatch(fields[name]):
                return [], f"{name} must be a bare domain (no scheme, www. or path)"
        return [json.dumps(fields, sort_keys=True, separators=(",", ":"))], None
