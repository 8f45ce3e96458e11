"""The HTTP endpoint every service serves: /metrics, /healthz and /readyz.

Each service owns its CollectorRegistry (no process-wide metrics singleton) and hands
in two checks. A check returns (ok, details); the endpoint answers 200 or 503 with the
details as JSON.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from aiusage.settings import MetricsSettings

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, dict[str, Any]]]


def always_ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


class ObservabilityServer:
    """Serves the endpoint on a daemon thread; ``port`` 0 in the settings disables it."""

    def __init__(
        self,
        settings: MetricsSettings,
        registry: CollectorRegistry,
        health: Check = always_ok,
        ready: Check = always_ok,
    ) -> None:
        self._settings = settings
        self._routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
            "/healthz": lambda: _check_response(health),
            "/readyz": lambda: _check_response(ready),
        }
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def start(self) -> None:
        if self._settings.port == 0:
            return
        routes = self._routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, content_type, body = 404, "text/plain", b"not found\n"
                else:
                    status, content_type, body = route()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((self._settings.host, self._settings.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aiusage-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health on http://%s:%d", self._settings.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _check_response(check: Check) -> tuple[int, str, bytes]:
    try:
        ok, details = check()
    except Exception as err:  # a failing check is an unhealthy answer, not a crash
        ok, details = False, {"error": f"{type(err).__name__}: {err}"}
    body = json.dumps({"ok": ok, **details}, default=str).encode() + b"\n"
    return (200 if ok else 503), "application/json", body
