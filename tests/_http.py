"""A loopback HTTP server for the fetch tests: serves bytes, and misbehaves on request.

Each route is a `Route` (body, content type, behaviour). Behaviours: "ok" (Range supported),
"404", "stall" (headers, then nothing), "truncate" (no Content-Length, half the body, close),
"flaky" (503 with Retry-After for the first `fails` requests, then ok), "hold" (half the body,
then wait until `release` is set, then the rest), "slow" (ok after `delay` seconds). Every
request is logged with its Range and Cookie headers; `max_active` is the most requests served at
once. A request with an absolute URL (a proxy request) is served as the URL's path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    content_type: str = "video/mp4"
    behaviour: str = "ok"
    fails: int = 0
    first_ok: int = 0  # "flaky": this many requests succeed before the failures start
    retry_after: int = 1
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    sent_half: threading.Event = field(default_factory=threading.Event)


@dataclass
class Hit:
    method: str
    path: str
    range: str | None
    cookie: str | None = None
    proxied: bool = False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # no stderr from threads
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        with self.server.lock:
            self.server.active += 1
            self.server.max_active = max(self.server.max_active, self.server.active)
        try:
            self._respond(head)
        finally:
            with self.server.lock:
                self.server.active -= 1

    def _respond(self, head: bool) -> None:
        rng = self.headers.get("Range")
        # A request line with an absolute URL is a proxy request: serve it as our own path.
        proxied = self.path.startswith("http://")
        if proxied:
            self.path = "/" + self.path.split("/", 3)[3]
        hit = Hit(self.command, self.path, rng, self.headers.get("Cookie"), proxied)
        with self.server.lock:
            self.server.hits.append(hit)
            route = self.server.routes.get(self.path.split("?")[0])
            count = sum(h.path == self.path for h in self.server.hits)
        if route is None or route.behaviour == "404":
            return self._plain(404, b"not found")
        if route.behaviour == "flaky" and route.first_ok < count <= route.first_ok + route.fails:
            self.send_response(503)
            self.send_header("Retry-After", str(route.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.behaviour == "slow":
            time.sleep(route.delay)
        body, start = route.body, 0
        if route.behaviour == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if route.behaviour == "stall":
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body[:100])
                self.wfile.flush()
                time.sleep(60)
            self.close_connection = True
            return
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0] or 0)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if head:
            return
        try:
            if route.behaviour == "hold" and start == 0:
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                route.sent_half.set()
                route.release.wait(60)
                self.wfile.write(body[half:])
            else:
                self.wfile.write(body[start:])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _plain(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients (yt-dlp's probe of a direct link) hang up early: not our concern

    routes: dict[str, Route]
    hits: list[Hit]
    lock: threading.Lock
    active: int = 0
    max_active: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def gets(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path and h.method == "GET"]


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[_Server]:
    """Serve `routes` on 127.0.0.1 (a free port) in a thread, for the duration of the block."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits, srv.lock = routes, [], threading.Lock()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        for r in routes.values():
            r.release.set()
        srv.shutdown()
        srv.server_close()
