"""A real HTTP(S) server on 127.0.0.1, in a thread, with knobs for tests.

    with FileServer() as server:
        server.add("/rootfs.tar.gz", Resource(data, etag='"v1"'))
        url = server.url("/rootfs.tar.gz")
        ...
        server.requests  # what it was asked: method, path, headers, status

Knobs per resource: a fixed status (404, 403...), statuses served first
(500 then success), dropping the connection after N body bytes (the next
requests are served whole), ETag / Last-Modified with 304 answers, Range +
If-Range (206), and a rate limit per connection.  `max_active` is the
largest number of requests the server was answering at once.
"""

from __future__ import annotations

import email.utils
import http.server
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class Resource:
    body: bytes
    etag: str | None = None
    last_modified: float | None = None  # a Unix time
    status: int = 200  # anything else: answered with that status, no body
    first_statuses: list[int] = field(default_factory=list)  # popped, one per request
    drop_after: int | None = None  # bytes of body before the connection is cut
    drops: int = 0  # how many responses are cut so
    rate: int | None = None  # bytes per second per connection
    ranges: bool = True
    content_type: str | None = None  # e.g. text/html for a pip index page

    @property
    def last_modified_http(self) -> str | None:
        if self.last_modified is None:
            return None
        return email.utils.formatdate(self.last_modified, usegmt=True)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    sent: int = 0  # body bytes written


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        seen = Seen("GET", self.path, dict(self.headers.items()))
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(seen)
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
            resource = owner.resources.get(self.path)
        try:
            self._answer(resource, seen)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with owner.lock:
                owner.active -= 1

    def _answer(self, resource: Resource | None, seen: Seen) -> None:
        if resource is None:
            return self._status(seen, 404)
        with self.server.owner.lock:
            status = resource.first_statuses.pop(0) if resource.first_statuses \
                else resource.status
        if status != 200:
            return self._status(seen, status)
        if self._not_modified(resource):
            return self._status(seen, 304, resource)
        start = self._range_start(resource)
        body = resource.body[start:]
        seen.status = 206 if start else 200
        self.send_response(seen.status)
        self._validators(resource)
        self.send_header("Content-Length", str(len(body)))
        if resource.content_type:
            self.send_header("Content-Type", resource.content_type)
        if resource.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if start:
            total = len(resource.body)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()
        self._send_body(resource, body, seen)

    def _status(self, seen: Seen, status: int, resource: Resource | None = None) -> None:
        seen.status = status
        self.send_response(status)
        if resource is not None:
            self._validators(resource)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _validators(self, resource: Resource) -> None:
        if resource.etag:
            self.send_header("ETag", resource.etag)
        if resource.last_modified_http:
            self.send_header("Last-Modified", resource.last_modified_http)

    def _not_modified(self, resource: Resource) -> bool:
        tag = self.headers.get("If-None-Match")
        if tag is not None:
            return tag == resource.etag
        since = self.headers.get("If-Modified-Since")
        return since is not None and since == resource.last_modified_http

    def _range_start(self, resource: Resource) -> int:
        match = _RANGE.match(self.headers.get("Range", ""))
        if not match or not resource.ranges:
            return 0
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range not in (resource.etag,
                                                     resource.last_modified_http):
            return 0
        start = int(match.group(1))
        return start if start < len(resource.body) else 0

    def _send_body(self, resource: Resource, body: bytes, seen: Seen) -> None:
        with self.server.owner.lock:
            cut = resource.drop_after if resource.drops > 0 else None
            if cut is not None:
                resource.drops -= 1
        chunk = 4096 if resource.rate else 65536
        for pos in range(0, len(body), chunk):
            piece = body[pos:pos + chunk]
            if cut is not None and seen.sent + len(piece) > cut:
                self.wfile.write(piece[:cut - seen.sent])
                seen.sent = cut
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # cut: no more bytes, no end
                self.close_connection = True
                return
            self.wfile.write(piece)
            seen.sent += len(piece)
            if resource.rate:
                time.sleep(len(piece) / resource.rate)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: FileServer


class FileServer:
    """Serve Resources on 127.0.0.1 (HTTPS when given an SSL context)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.resources: dict[str, Resource] = {}
        self.requests: list[Seen] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def add(self, path: str, resource: Resource) -> str:
        self.resources[path] = resource
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}{path}"

    def requests_for(self, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.requests if seen.path == path]

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
