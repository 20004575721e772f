"""Activation to cloud storage: audiences written as CSV and/or Parquet files through Airflow's
ObjectStoragePath (a local folder, s3://, gs://, ...).

Layout, per destination and audience (a segment, or `accounts__<solution interest>`):

    <path>/<destination>/<audience>/<evaluation>__<run>/part-00000.csv [part-00000.parquet] ... manifest.json

Every file is written under a hidden temporary name and renamed when complete, and the manifest is
written (the same way) last: a reader that takes only directories holding `manifest.json` never sees
a partial export. On an object store the rename is a server-side copy of the finished temporary
object: an object appears under its final key only once the copy is complete (S3 never shows a
partly written object), so the rule holds there too. A run that dies midway leaves a directory with
no manifest; the next run of the audience removes it and exports again (the state below was not
advanced).

`export: full` writes every current member each run; `export: incremental` writes only who entered
and who exited since the previous export (column `change`), and nothing at all when nobody did. What
the last export delivered is kept in activation_state, replaced once its manifest is published;
every run writes a row in activation_sync_log (files, rows, location, or why nothing was written).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

from b2b_cdp import warehouse
from b2b_cdp.config import CdpConfig, CloudStorageDestination, load_config

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PERSON_COLUMNS = ["person_id", "email", "first_name", "last_name"]
ACCOUNT_COLUMNS = ["account_id", "mdm_id", "name", "website", "buying_group_complete",
                   "buying_group_completeness"]
# Parquet column types (every other column is a string).
PARQUET_TYPES = {"buying_group_complete": "bool_", "buying_group_completeness": "float64"}
NO_CHANGE = "no change since the previous export: nothing written"
FLUSH_ROWS = 10_000


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") if moment else "never"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "run"


def _location(directory) -> str:
    """The export's URL as readers know it (ObjectStoragePath writes the connection id in as
    `s3://<conn id>@bucket/...`)."""
    return re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", r"\1", str(directory))


def _row_hash(row: tuple) -> str:
    return hashlib.sha256("\x1f".join("" if v is None else str(v) for v in row).encode()).hexdigest()[:16]


def storage_root(destination: CloudStorageDestination):
    """The destination's folder as an ObjectStoragePath (a bare path means the local disk)."""
    from airflow.sdk import ObjectStoragePath

    url = destination.path if "://" in destination.path else f"file://{destination.path}"
    return ObjectStoragePath(url.rstrip("/"), conn_id=destination.conn_id)


@dataclass(frozen=True)
class _Audience:
    key: str                      # the folder name and activation_state.audience_key
    kind: str                     # person | account
    segment_id: str | None
    solution_interest: str | None
    columns: list[str]


def _audiences(destination: CloudStorageDestination) -> list[_Audience]:
    return ([_Audience(a.segment, "person", a.segment, None, PERSON_COLUMNS) for a in destination.audiences]
            + [_Audience(a.key, "account", a.segment, a.solution_interest, ACCOUNT_COLUMNS)
               for a in destination.account_audiences])


def _read_audience(conn, audience: _Audience) -> tuple[dict[str, tuple], datetime | None]:
    """member key (person or account id) -> exported row, and the evaluation it reflects."""
    if audience.kind == "person":
        rows = warehouse.fetch_all(conn, "activation/export_person_rows", {"segment_id": audience.segment_id})
        (evaluated_at,), = warehouse.fetch_all(conn, "activation/segment_evaluated_at",
                                               {"segment_id": audience.segment_id})
    else:
        params = {"segment_id": audience.segment_id, "solution_interest": audience.solution_interest}
        rows = [row[:len(ACCOUNT_COLUMNS)] for row in   # the organization URN is LinkedIn's
                warehouse.fetch_all(conn, "activation/export_account_rows", params)]
        (evaluated_at,), = warehouse.fetch_all(conn, "activation/account_audience_evaluated_at", params)
    return {row[0]: tuple(row) for row in rows}, evaluated_at


class _HashingSink:
    """A write-only file that passes bytes on and keeps their count and SHA-256 (for the manifest)."""

    def __init__(self, out):
        self._out, self.digest, self.size, self.closed = out, hashlib.sha256(), 0, False

    def write(self, data) -> int:
        data = bytes(data)
        self.digest.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self.closed = True


def _csv_body(sink: _HashingSink, header: list[str], rows: Iterable[tuple]) -> int:
    count = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)

    def flush() -> None:
        sink.write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()

    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
        count += 1
        if count % FLUSH_ROWS == 0:
            flush()
    flush()
    return count


def _parquet_value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _parquet_body(sink: _HashingSink, header: list[str], rows: Iterable[tuple]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, getattr(pa, PARQUET_TYPES.get(name, "string"))()) for name in header])
    count = 0
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema) as writer:
        batch: list[tuple] = []

        def flush() -> None:
            columns = list(zip(*batch)) if batch else [[] for _ in header]
            writer.write_table(pa.Table.from_arrays(
                [pa.array([_parquet_value(v) for v in column], type=field.type)
                 for column, field in zip(columns, schema)], schema=schema))
            batch.clear()

        for row in rows:
            batch.append(row)
            count += 1
            if len(batch) == FLUSH_ROWS:
                flush()
        if batch or count == 0:
            flush()
    return count


WRITERS: dict[str, Callable[[_HashingSink, list[str], Iterable[tuple]], int]] = {
    "csv": _csv_body, "parquet": _parquet_body}


def _write_part(directory, name: str, header: list[str], rows: Iterable[tuple],
                file_format: str = "csv") -> dict[str, Any]:
    """One file, written under a hidden temporary name and renamed once complete."""
    temporary, final = directory / f".{name}.tmp", directory / name
    with temporary.open("wb") as out:
        sink = _HashingSink(out)
        count = WRITERS[file_format](sink, header, rows)
    temporary.rename(final)
    return {"name": name, "format": file_format, "rows": count, "bytes": sink.size,
            "sha256": sink.digest.hexdigest()}


def _publish_manifest(directory, manifest: dict[str, Any]) -> None:
    """The manifest, last and atomically: its presence marks the export complete."""
    temporary = directory / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")
    temporary.rename(directory / MANIFEST)


def _remove_unfinished(folder, keep) -> list[str]:
    """Export directories with no manifest (a run that died before publishing): never read, removed."""
    removed = []
    if not folder.exists():
        return removed
    for child in folder.iterdir():
        if child.is_dir() and child.name != keep.name and not (child / MANIFEST).exists():
            child.fs.rm(child.path, recursive=True)
            removed.append(child.name)
    if removed:
        log.warning("Removed unfinished exports (no manifest): %s", ", ".join(sorted(removed)))
    return removed


def _chunks(rows: list[tuple], size: int) -> Iterable[list[tuple]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def export_audience(cfg: CdpConfig, destination: CloudStorageDestination, audience: _Audience,
                    run_id: str, dry_run: bool = False) -> dict[str, Any]:
    sandbox = cfg.sandbox_of(destination)
    keys = {"destination_id": destination.id, "audience_key": audience.key}
    with warehouse.connect(sandbox) as conn:
        desired, evaluated_at = _read_audience(conn, audience)
        held = dict(warehouse.fetch_all(conn, "activation/held_members", keys))
    hashes = {key: _row_hash(row) for key, row in desired.items()}
    entered = sorted(set(desired) - set(held))
    exited = sorted(set(held) - set(desired))
    incremental = destination.export == "incremental"
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/start_sync", {
            **keys, "run_id": run_id, "segment_id": audience.segment_id or audience.solution_interest,
            "audience_size": len(desired), "planned_add": len(entered), "planned_remove": len(exited),
            "started_at": _utcnow()}).close()
    if dry_run:
        from b2b_cdp.activation import store_plan

        return store_plan(sandbox, keys, run_id, entered, exited, len(desired))

    folder = storage_root(destination) / destination.id / audience.key
    directory = folder / f"{_stamp(evaluated_at)}__{_safe(run_id)}"
    _remove_unfinished(folder, directory)

    def finish(files: list[dict], note: str | None, added: int, removed: int) -> dict[str, Any]:
        # Rows of the export (each format holds the same rows).
        rows_written = sum(f["rows"] for f in files if f["format"] == destination.formats[0])
        with warehouse.connect(sandbox) as conn:
            warehouse.run(conn, "activation/finish_export", {
                **keys, "run_id": run_id, "added": added, "removed": removed, "files": len(files),
                "rows_written": rows_written, "location": _location(directory) if files else None, "note": note,
                "finished_at": _utcnow()}).close()
        outcome = {"audience_size": len(desired), "entered": len(entered), "exited": len(exited),
                   "files": len(files), "rows": rows_written, "location": _location(directory) if files else None}
        log.info("%s %s: %s%s", destination.id, audience.key, outcome, f" ({note})" if note else "")
        return outcome

    if incremental and not entered and not exited:
        return finish([], NO_CHANGE, 0, 0)

    if incremental:
        header = [*audience.columns, "change"]
        width = len(audience.columns)
        rows = ([(*desired[k], "entered") for k in entered]
                + [(k, held[k] or None, *([None] * (width - 2)), "exited") for k in exited])
    else:
        header = audience.columns
        rows = [desired[k] for k in sorted(desired)]
    directory.mkdir(parents=True, exist_ok=True)
    files = [_write_part(directory, f"part-{n:05d}.{file_format}", header, chunk, file_format)
             for n, chunk in enumerate(_chunks(rows, destination.split_rows) if rows else [[]])
             for file_format in destination.formats]
    manifest = {
        "destination": destination.id, "audience": audience.key, "kind": audience.kind,
        "segment": audience.segment_id, "solution_interest": audience.solution_interest,
        "export": destination.export, "evaluated_at": evaluated_at.isoformat() if evaluated_at else None,
        "exported_at": _utcnow().isoformat(), "run_id": run_id, "columns": header,
        "formats": list(destination.formats), "rows": len(rows), "audience_size": len(desired),
        "entered": len(entered), "exited": len(exited), "files": files,
    }
    _publish_manifest(directory, manifest)
    # Only a published export moves the state: a run that died above is repeated in full.
    with warehouse.connect(sandbox) as conn:
        warehouse.run(conn, "activation/clear_state", keys).close()
        synced_at = _utcnow()
        # member_key: what an exited row carries besides the id (the email, or the account's MDM id).
        warehouse.copy_rows(conn, "activation_state",
                            ["destination_id", "audience_key", "person_id", "member_key", "payload_hash", "synced_at"],
                            ((destination.id, audience.key, key, row[1] or "", hashes[key], synced_at)
                             for key, row in desired.items()))
    return finish(files, None, len(entered), len(exited))


def activate_destination(cfg: CdpConfig, destination: CloudStorageDestination, run_id: str,
                         dry_run: bool = False) -> dict[str, dict]:
    return {audience.key: export_audience(cfg, destination, audience, run_id, dry_run)
            for audience in _audiences(destination)}


def published_exports(destination_id: str, audience_key: str) -> list[dict[str, Any]]:
    """The manifests of an audience's complete exports, oldest first (what a reader would take)."""
    destination = load_config().destination(destination_id)
    folder = storage_root(destination) / destination.id / audience_key
    if not folder.exists():
        return []
    manifests = [d / MANIFEST for d in sorted(folder.iterdir(), key=lambda p: p.name) if (d / MANIFEST).exists()]
    return [json.loads(m.read_text(encoding="utf-8")) for m in manifests]
