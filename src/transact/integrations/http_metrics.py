"""A small HTTP endpoint for a worker process: ``GET /metrics`` (Prometheus text) and ``GET /healthz``.

Stdlib ``ThreadingHTTPServer`` on a thread of its own. It reads through a store of its own with a
short outage budget, so a scrape or health check during a database outage answers 503 within
seconds instead of waiting as long as the engine's writes do (they retry until the database is back).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from transact.engine.metrics import DEFAULT_LEASE_SECONDS, METRICS_CONTENT_TYPE, render_metrics
from transact.storage import Store, Unavailable, open_store

log = logging.getLogger("transact")

READ_BUDGET_S = 2.0  # how long a scrape or health check waits out a database outage


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` for the system database at ``url``. ``describe()``
    adds fields to a healthy answer and returns None while the process is not ready (503)."""

    def __init__(
        self,
        url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        describe: Callable[[], dict[str, Any] | None] = dict,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._store: Store = open_store(
            url, retry_timeout_s=READ_BUDGET_S, pool_size=2, connect_timeout_s=READ_BUDGET_S
        )
        self._describe = describe
        self._lease_s = lease_seconds
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="transact-metrics-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._store.close()

    # -- answers ------------------------------------------------------------------------------
    def metrics(self) -> tuple[int, str, bytes]:
        try:
            return 200, METRICS_CONTENT_TYPE, render_metrics(self._store, lease_seconds=self._lease_s)
        except Unavailable as exc:
            return 503, "text/plain; charset=utf-8", f"system database unavailable: {exc}\n".encode()

    def health(self) -> tuple[int, str, bytes]:
        fields = self._describe()
        if fields is None:
            body: dict[str, Any] = {"status": "unavailable", "error": "not launched"}
        else:
            try:
                body = {"status": "ok", **fields, "schema_version": self._store.schema_version()}
            except Unavailable as exc:
                body = {"status": "unavailable", "error": f"system database unreachable: {exc}"}
        code = 200 if body["status"] == "ok" else 503
        return code, "application/json", json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {"/metrics": self.metrics, "/healthz": self.health}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib calls it by this name
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    code, ctype, body = 404, "application/json", b'{"error": "not found: try /metrics or /healthz"}'
                else:
                    code, ctype, body = route()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics http: " + format, *args)

        return Handler
