"""Faults switched on per run, each scoped to one emulated instance.

    fleet.inject("marketo:111-AAA-111", "http_5xx", count=2, status=502)
    fleet.clear_faults()

Counted faults (`count`) are used up one affected request at a time and then disappear; the others
stay until cleared. `token_expiry` acts once, when injected; `field_renamed` is undone when cleared.
"""

from __future__ import annotations

import threading

# fault -> {param: default}; a default of REQUIRED must be given.
REQUIRED = object()
FAULTS: dict[str, dict[str, object]] = {
    "latency": {"seconds": 1.0, "count": None},
    "http_5xx": {"count": 1, "status": 503},
    "rate_limit_burst": {"count": 1},
    "token_expiry": {},
    "connection_reset": {"after_bytes": None, "count": 1},
    "malformed_csv_row": {"object": None, "row": 1, "kind": "quote", "count": 1},
    "field_renamed": {"object": REQUIRED, "old": REQUIRED, "new": REQUIRED},
    "export_stall": {"object": None},
}
MALFORMED_KINDS = ("quote", "columns")


def parse_fault_spec(spec: str) -> tuple[str, str, dict]:
    """'marketo:111-AAA-111:http_5xx:count=2,status=502' -> (instance key, fault, params)."""
    parts = spec.split(":", 3)
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError(f"--fault takes instance:fault[:param=value,...] (instance like marketo:111-AAA-111), "
                         f"got {spec!r}")
    key, fault = f"{parts[0]}:{parts[1]}", parts[2]
    params = {}
    if len(parts) == 4 and parts[3]:
        for item in parts[3].split(","):
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"--fault parameter {item!r} is not name=value")
            params[name.strip()] = _scalar(value.strip())
    return key, fault, params


def _scalar(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def validate(fault: str, params: dict) -> dict:
    """The fault's full parameter set (defaults filled in); ValueError on anything unknown or wrong."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    spec = FAULTS[fault]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(f"fault {fault!r} takes no parameter {', '.join(unknown)}; it takes: "
                         f"{', '.join(spec) or 'none'}")
    full = {}
    for name, default in spec.items():
        value = params.get(name, default)
        if value is REQUIRED:
            raise ValueError(f"fault {fault!r} needs parameter {name!r}")
        full[name] = value
    count = full.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"fault {fault!r}: count must be a positive integer, got {count!r}")
    if fault == "latency":
        seconds = full["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"latency: seconds must be a non-negative number, got {seconds!r}")
    if fault == "http_5xx":
        status = full["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 500 <= status <= 599:
            raise ValueError(f"http_5xx: status must be 500..599, got {status!r}")
    if fault == "connection_reset":
        after = full["after_bytes"]
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise ValueError(f"connection_reset: after_bytes must be a non-negative integer, got {after!r}")
    if fault == "malformed_csv_row":
        row = full["row"]
        if isinstance(row, bool) or not isinstance(row, int) or row < 1:
            raise ValueError(f"malformed_csv_row: row must be a positive integer (1 = first data row), got {row!r}")
        if full["kind"] not in MALFORMED_KINDS:
            raise ValueError(f"malformed_csv_row: kind must be one of {', '.join(MALFORMED_KINDS)}")
    if fault == "export_stall" and full["object"] not in (None, "leads", "activities"):
        raise ValueError(f"export_stall: object must be leads or activities, got {full['object']!r}")
    if fault == "field_renamed":
        for name in ("object", "old", "new"):
            if not isinstance(full[name], str) or not full[name]:
                raise ValueError(f"field_renamed: {name} must be a non-empty string")
    return full


class FaultRegistry:
    """Active faults of a fleet. Thread-safe; instances ask it on each request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict] = []
        self._next_id = 1

    def add(self, instance: str, fault: str, params: dict, created_at: str) -> dict:
        with self._lock:
            entry = {"id": self._next_id, "instance": instance, "fault": fault,
                     "params": {k: v for k, v in params.items() if k != "count"},
                     "remaining": params.get("count"), "created_at": created_at}
            self._next_id += 1
            self._faults.append(entry)
            return dict(entry)

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(entry, params=dict(entry["params"])) for entry in self._faults]

    def remove(self, instance: str | None = None) -> list[dict]:
        with self._lock:
            gone = [e for e in self._faults if instance is None or e["instance"] == instance]
            self._faults = [e for e in self._faults if e not in gone]
            return gone

    def active(self, instance: str, fault: str, match=None) -> dict | None:
        """The params of the first matching fault, without using it up."""
        with self._lock:
            for entry in self._faults:
                if entry["instance"] == instance and entry["fault"] == fault \
                        and (match is None or match(entry["params"])):
                    return dict(entry["params"])
        return None

    def take(self, instance: str, fault: str, match=None) -> dict | None:
        """The params of the first matching fault, using one count of it up (gone at zero)."""
        with self._lock:
            for entry in self._faults:
                if entry["instance"] != instance or entry["fault"] != fault:
                    continue
                if match is not None and not match(entry["params"]):
                    continue
                if entry["remaining"] is not None:
                    entry["remaining"] -= 1
                    if entry["remaining"] <= 0:
                        self._faults.remove(entry)
                return dict(entry["params"])
        return None


def malform_csv_line(line: str, delimiter: str, kind: str) -> str:
    """One data line made unparseable: an opening quote never closed, or one column too many."""
    if kind == "columns":
        return line + delimiter + "unexpected_extra_column"
    cells = line.split(delimiter)
    index = next((i for i, cell in enumerate(cells) if cell not in ("", "null", '""')), 0)
    cell = cells[index]
    if cell.startswith('"') and cell.endswith('"') and len(cell) >= 2:
        cell = cell[:-1]                                # drop the closing quote
    else:
        cell = '"' + cell                               # open a quote that never closes
    cells[index] = cell
    return delimiter.join(cells)
