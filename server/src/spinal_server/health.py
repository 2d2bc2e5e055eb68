"""The HTTP health and metrics listener: `GET /healthz` and `GET /metrics` (Prometheus text format).

Started by `PolicyServer` on its own thread; binds the manifest's health host (127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger("spinal_server.health")


class HealthServer:
    """Serves `health()` -> (ok, detail dict) on /healthz and `metrics()` bytes on /metrics."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], tuple[bool, dict]],
        metrics: Callable[[], bytes],
    ) -> None:
        handler = _handler(health, metrics)
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            from spinal_server.errors import ManifestError

            raise ManifestError(
                f"health.port {port} on {host} cannot be bound ({exc.strerror}); pick a free port or set health.port: null"
            ) from None
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="spinal-health", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def _handler(
    health: Callable[[], tuple[bool, dict]], metrics: Callable[[], bytes]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok, detail = health()
                self._send(200 if ok else 503, json.dumps(detail).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, metrics(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error": "not found; try /healthz or /metrics"}', "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("health %s", format % args)

    return Handler
