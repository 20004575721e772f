"""The fleet's control API (its own port, `fleet.urls["control"]`): the clock, faults and mutations,
for tests and tools that drive a fleet running in another process.

    GET    /control/clock                      {"now": ISO, "mode": "frozen"|"wall"}
    POST   /control/clock      {"set": ISO} | {"advance_seconds": n}        -> as GET
    GET    /control/faults                     {"faults": [entry, ...]}
    POST   /control/faults     {"instance", "fault", "params": {...}}       -> entry
    DELETE /control/faults[?instance=KEY]      {"cleared": n}
    POST   /control/mutations  {"instance", "action", "args": {...}}        -> {"result": record}
    GET    /control                            {"urls": fleet.urls, "faults": [names and parameters]}

Errors are JSON {"error": message}: 400 for a bad request, 404 for an unknown instance or path.
"""

from __future__ import annotations

from .faults import FAULTS, REQUIRED
from .http import App, Request, Response, json_response
from .timeutil import format_salesforce


class ControlApp(App):
    max_body_bytes = 1024 * 1024

    def __init__(self, fleet) -> None:
        self.fleet = fleet

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        routes = {
            ("GET", "/control"): self._index,
            ("GET", "/control/clock"): self._clock,
            ("POST", "/control/clock"): self._set_clock,
            ("GET", "/control/faults"): self._faults,
            ("POST", "/control/faults"): self._inject,
            ("DELETE", "/control/faults"): self._clear,
            ("POST", "/control/mutations"): self._mutate,
        }
        handler = routes.get((request.method, path))
        if handler is None:
            known = {p for _, p in routes}
            if path in known:
                return json_response({"error": f"{request.method} is not allowed on {path}"}, 405)
            return json_response({"error": f"no control endpoint {request.path}"}, 404)
        try:
            return handler(request)
        except KeyError as exc:
            return json_response({"error": str(exc.args[0]) if exc.args else "not found"}, 404)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)

    @staticmethod
    def _body(request: Request) -> dict:
        try:
            body = request.json()
        except ValueError:
            raise ValueError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
        return body

    def _index(self, request: Request) -> Response:
        catalog = {name: {p: (None if d is REQUIRED else d) for p, d in params.items()}
                   for name, params in FAULTS.items()}
        return json_response({"urls": self.fleet.urls, "faults": catalog})

    def _clock_body(self) -> dict:
        return {"now": format_salesforce(self.fleet.now()).replace("+0000", "Z"), "mode": self.fleet.clock_mode}

    def _clock(self, request: Request) -> Response:
        return json_response(self._clock_body())

    def _set_clock(self, request: Request) -> Response:
        body = self._body(request)
        if ("set" in body) == ("advance_seconds" in body):
            raise ValueError('give exactly one of {"set": ISO-8601} or {"advance_seconds": n}')
        if "set" in body:
            if not isinstance(body["set"], str):
                raise ValueError('"set" takes an ISO-8601 date-time string')
            self.fleet.set_clock(body["set"])
        else:
            self.fleet.advance(body["advance_seconds"])
        return json_response(self._clock_body())

    def _faults(self, request: Request) -> Response:
        return json_response({"faults": self.fleet.faults()})

    def _inject(self, request: Request) -> Response:
        body = self._body(request)
        instance, fault = body.get("instance"), body.get("fault")
        if not isinstance(instance, str) or not isinstance(fault, str):
            raise ValueError('give "instance" (e.g. "marketo:111-AAA-111") and "fault"')
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError('"params" must be an object')
        params = {**{k: v for k, v in body.items() if k not in ("instance", "fault", "params")}, **params}
        return json_response(self.fleet.inject(instance, fault, **params), 201)

    def _clear(self, request: Request) -> Response:
        return json_response({"cleared": self.fleet.clear_faults(request.arg("instance"))})

    def _mutate(self, request: Request) -> Response:
        body = self._body(request)
        instance, action = body.get("instance"), body.get("action")
        if not isinstance(instance, str) or not isinstance(action, str):
            raise ValueError('give "instance", "action" and "args"')
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise ValueError('"args" must be an object')
        return json_response({"result": self.fleet.mutate(instance, action, **args)})
