"""The console's HTTP server: stdlib ``ThreadingHTTPServer``, a small router, static pages.

``ConsoleServer(store, host=, port=, token=, read_only=)`` serves the pages (``static/``), the JSON
API (``api.py``), ``/healthz`` and ``/metrics``. ``transact console`` runs one in the foreground;
config ``console_port`` runs one inside a launched app (``service_for``), stopped at destroy.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from transact.console import api
from transact.console.security import Policy, SecurityError, check_bind
from transact.engine.runtime import Runtime
from transact.storage import Store

log = logging.getLogger("transact.console")

MAX_BODY = 64 * 1024
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),  # a ?token= in the address never leaks in a Referer
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'none'"),
)
_ID = r"(?P<id>[^/]+)"


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, list[str]]
    body: dict[str, Any]
    match: Mapping[str, str]


Handler = Callable[[api.Backend, _Request], Any]


def _route(
    method: str, pattern: str, handler: Handler, *, changes: bool = False
) -> tuple[str, re.Pattern[str], Handler, bool]:
    return method, re.compile(f"^{pattern}$"), handler, changes


def _action(name: str) -> Handler:
    return lambda b, r: api.ACTIONS[name](b, r.match["id"], r.body)


_ROUTES = (
    _route("GET", "/api/config", lambda b, r: api.config(b)),
    _route("GET", "/api/workflows", lambda b, r: api.list_workflows(b, r.params)),
    _route("GET", f"/api/workflows/{_ID}", lambda b, r: api.get_workflow(b, r.match["id"])),
    _route(
        "GET",
        f"/api/workflows/{_ID}/streams/(?P<key>[^/]+)",
        lambda b, r: api.read_stream(b, r.match["id"], r.match["key"], r.params),
    ),
    _route("GET", "/api/queues", lambda b, r: api.list_queues(b)),
    _route("GET", "/api/schedules", lambda b, r: api.list_schedules(b)),
    _route("GET", "/api/executors", lambda b, r: api.list_executors(b)),
    _route("GET", "/api/stranded", lambda b, r: api.list_stranded(b, r.params)),
    *(_route("POST", f"/api/workflows/{_ID}/{name}", _action(name), changes=True) for name in api.ACTIONS),
    _route("DELETE", f"/api/workflows/{_ID}", _action("delete"), changes=True),
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server_version = "transact-console"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("GET", head=True)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._error(405, "method not allowed")

    do_PATCH = do_PUT

    # -- dispatch -------------------------------------------------------------------------------
    def _serve(self, method: str, *, head: bool = False) -> None:
        url = urlsplit(self.path)
        path = url.path
        policy = self.server.policy
        try:
            policy.check_host(self.headers)
            if method == "GET" and path in _STATIC:
                self._static(*_STATIC[path], head=head)
                return
            if method == "GET" and path == "/favicon.ico":
                self._send(204, b"", "image/x-icon", head=True)  # no icon; spares a 404 in the browser log
                return
            if method == "GET" and path == "/healthz":
                self._json(200, api.healthz(self.server.backend), head=head)
                return
            policy.check_auth(self.headers)
            if method == "GET" and path == "/metrics":
                self._metrics(head=head)
                return
            for m, pattern, handler, changes in _ROUTES:
                found = pattern.match(path)
                if found is None or m != method:
                    continue
                if changes:
                    policy.check_change(self.headers)
                body = self._body() if method in ("POST", "DELETE") else {}
                match = {k: unquote(v) for k, v in found.groupdict().items()}
                request = _Request(method, path, api.query_params(url.query), body, match)
                self._json(200, handler(self.server.backend, request), head=head)
                return
            known = any(p.match(path) for _, p, _, _ in _ROUTES)
            self._error(
                405 if known else 404, f"{method} {path}: " + ("method not allowed" if known else "no such page")
            )
        except SecurityError as exc:
            self._error(exc.status, str(exc))
        except Exception as exc:
            status = api.error_status(exc)
            if status is None:
                log.exception("console: %s %s failed", method, path)
                self._error(500, f"internal error: {type(exc).__name__}: {exc}")
            else:
                self._error(status, " ".join(str(exc).split()) or type(exc).__name__)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise api.ApiError(413, f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise api.ApiError(400, f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise api.ApiError(400, "request body must be a JSON object")
        return body

    # -- answers --------------------------------------------------------------------------------
    def _send(self, status: int, data: bytes, content_type: str, *, head: bool = False, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache" if cache else "no-store")
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _json(self, status: int, payload: Any, *, head: bool = False) -> None:
        data = json.dumps(payload, ensure_ascii=False, default=str).encode()
        self._send(status, data, "application/json; charset=utf-8", head=head)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _static(self, name: str, content_type: str, *, head: bool = False) -> None:
        data = resources.files("transact.console").joinpath("static").joinpath(name).read_bytes()
        self._send(200, data, content_type, head=head, cache=True)

    def _metrics(self, *, head: bool = False) -> None:
        try:
            from transact.engine.metrics import METRICS_CONTENT_TYPE, render_metrics
        except ImportError:
            self._error(404, "metrics are not available in this build")
            return
        self._send(200, render_metrics(self.server.backend.store), METRICS_CONTENT_TYPE, head=head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], backend: api.Backend, policy: Policy) -> None:
        self.backend = backend
        self.policy = policy
        super().__init__(address, _Handler)


class ConsoleServer:
    """The web console on ``host:port`` over ``store`` (port 0: any free port; see ``port``).

    ``token``: required as a Bearer token on every data request (mandatory off loopback).
    ``read_only``: no actions (the pages hide them and the API answers 403). ``rt``: the launched
    runtime when the console runs inside an app."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 8321,
        token: str | None = None,
        read_only: bool = False,
        rt: Runtime | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        check_bind(host, token)
        backend = api.Backend(
            store, rt=rt, read_only=read_only, token_required=bool(token), lease_seconds=lease_seconds
        )
        self._server = _Server((host, port), backend, Policy(token=token or None, read_only=read_only))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` (or KeyboardInterrupt)."""
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="transact-console", daemon=True)
        self._thread.start()
        log.info("transact console at %s", self.url)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # returns once serve_forever has left its loop
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def service_for(rt: Runtime) -> ConsoleServer | None:
    """The in-process console of a launched app (config ``console_port``; loopback only)."""
    port = rt.settings.console_port
    if port is None:
        return None
    return ConsoleServer(rt.store, port=port, rt=rt, lease_seconds=rt.settings.lease_seconds)
