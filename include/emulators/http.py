"""The small HTTP layer both emulators share: a regex router, request/response objects, a server.

Each emulated instance runs its own ThreadingHTTPServer so that it looks like its own host.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
import email.utils
from datetime import timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


FILE_CHUNK = 1 << 20     # read size when a file body cannot go out by sendfile(2)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]          # lower-cased names
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def form(self) -> dict[str, list[str]]:
        if not self.body:
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self):
        """The JSON body; raises ValueError when it does not parse."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class FileBody:
    """A body sent straight from a file on disk: `length` bytes from `offset`, never read into memory."""
    path: Path
    offset: int
    length: int


@dataclass
class Response:
    status: int = 200
    body: bytes | FileBody = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    # Fault injection: send the headers and this many body bytes, then reset the connection.
    abort_after: int | None = None

    @property
    def content_length(self) -> int:
        return self.body.length if isinstance(self.body, FileBody) else len(self.body)


def json_response(obj, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return Response(status=status, body=body, headers=dict(headers or {}))


def text_response(text: str, status: int = 200, content_type: str = "text/plain;charset=UTF-8") -> Response:
    return Response(status=status, body=text.encode("utf-8"), content_type=content_type)


def file_response(path: Path, content_type: str, range_header: str | None = None) -> Response:
    """Serve a file from disk, honouring a single `Range: bytes=...` (RFC 7233) when given.
    Raises FileNotFoundError when the file is gone."""
    size = os.stat(path).st_size
    accept = {"Accept-Ranges": "bytes"}
    span = _byte_range(range_header, size)
    if span is None:
        return Response(body=FileBody(Path(path), 0, size), content_type=content_type, headers=accept)
    start, end = span
    if start >= size or start > end:
        return Response(status=416, body=b"", content_type=content_type,
                        headers={"Content-Range": f"bytes */{size}", **accept})
    return Response(status=206, body=FileBody(Path(path), start, end - start + 1), content_type=content_type,
                    headers={"Content-Range": f"bytes {start}-{end}/{size}", **accept})


def _byte_range(range_header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte asked for, last capped at the end; None for no usable Range (the whole body).
    The caller answers 416 when first is past the end or after last."""
    if not range_header:
        return None
    # Marketo's own docs also show "bytes 724-999" (no '='), so accept either separator.
    match = re.fullmatch(r"\s*bytes\s*[= ]\s*(\d*)\s*-\s*(\d*)\s*", range_header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.groups()
    if first == "":               # suffix range: the last N bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1


class Router:
    """Routes (method, path) to handlers by full-match regular expressions, in registration order."""

    def __init__(self) -> None:
        self._routes: list[tuple[set[str], re.Pattern, object]] = []

    def add(self, methods: str, pattern: str, handler) -> None:
        self._routes.append(({m.strip().upper() for m in methods.split("|")}, re.compile(pattern), handler))

    def match(self, method: str, path: str):
        """(handler, params) for the first matching route, or None."""
        for methods, pattern, handler in self._routes:
            found = pattern.fullmatch(path)
            if found and method.upper() in methods:
                return handler, found.groupdict()
        return None


class App:
    """What a server serves. Subclasses implement handle()."""

    max_body_bytes: int | None = None

    def handle(self, request: Request) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def body_too_large(self) -> Response:
        return text_response("Request Entity Too Large", status=413)


def _make_handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive; every response carries Content-Length
        disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait on delayed ACKs
        def version_string(self) -> str:
            return "emulator"

        def date_time_string(self, timestamp=None) -> str:
            # The Date header tells the emulated clock, as a real service's tells its own: clients
            # reckon quota days and freshness from it.
            now = getattr(app, "now", None)
            if timestamp is None and callable(now):
                return email.utils.format_datetime(now().astimezone(timezone.utc), usegmt=True)
            return super().date_time_string(timestamp)

        def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
            pass  # request logs would drown test output

        def _serve(self) -> None:
            split = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = b""
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = self._read_chunked()
            else:
                length = int(headers.get("content-length") or 0)
                if app.max_body_bytes is not None and length > app.max_body_bytes:
                    # Refuse without reading the body; the connection cannot be reused after that.
                    self.close_connection = True
                    self._write(app.body_too_large())
                    return
                body = self.rfile.read(length) if length else b""
            if app.max_body_bytes is not None and len(body) > app.max_body_bytes:
                self._write(app.body_too_large())
                return
            request = Request(
                method=self.command.upper(),
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=headers,
                body=body,
            )
            try:
                response = app.handle(request)
            except Exception as exc:  # a bug in a handler must not kill the connection silently
                response = text_response(f"Internal Server Error: {type(exc).__name__}: {exc}", status=500)
            self._write(response)

        def _read_chunked(self) -> bytes:
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        def _write(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.content_length))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command == "HEAD":
                return
            length = response.content_length
            if response.abort_after is not None:
                length = min(length, max(0, response.abort_after))
            if isinstance(response.body, FileBody):
                self._send_file(response.body, length)
            else:
                self.wfile.write(response.body[:length])     # the whole body is not copied
            if response.abort_after is None:
                return
            # The connection dies mid-body: what a client sees when a download is cut off.
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass

        def _send_file(self, body: FileBody, count: int) -> None:
            """`count` bytes of the file from body.offset: by sendfile(2) where the OS has it, else
            in large reads."""
            self.wfile.flush()
            if count <= 0:
                return
            with open(body.path, "rb") as handle:
                if hasattr(os, "sendfile"):
                    count -= self.connection.sendfile(handle, body.offset, count)
                else:
                    handle.seek(body.offset)
                    while count > 0 and (chunk := handle.read(min(count, FILE_CHUNK))):
                        self.wfile.write(chunk)
                        count -= len(chunk)
            if count:
                raise OSError(f"{body.path} ended {count} bytes short of the Content-Length sent")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128      # bursts of parallel clients must reach the handler, not the backlog


class Server:
    """One app on one port, served from a daemon thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._httpd = _HTTPServer((host, port), _make_handler(app))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"emulator-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
