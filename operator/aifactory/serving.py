"""The operator's own HTTP endpoint: /metrics, /readyz, and read-only JSON views.

Started by the entry point before kopf, so a port that is already taken stops the process
with a clear message and a non-zero exit (the Pod restarts visibly) instead of a startup
handler retrying forever.

/readyz answers 200 only while this replica's hub caches are warm: the chart's readiness probe
keeps a cold replica out of the webhook Service, so admission is only ever answered with a
warm view.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class Endpoints:
    """What the server answers with; the runtime fills it in once it exists."""

    def __init__(self) -> None:
        self.ready: Callable[[], bool] = lambda: False
        #: path prefix -> function(rest of the path) -> JSON-able value or None (404)
        self.views: dict[str, Callable[[str], Any]] = {}


class _Handler(BaseHTTPRequestHandler):
    endpoints: Endpoints

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds must not flood the log

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            return
        if path == "/readyz":
            ok = self.endpoints.ready()
            self._send(200 if ok else 503, b"ok\n" if ok else b"caches not warm\n", "text/plain")
            return
        for prefix, view in self.endpoints.views.items():
            if path.startswith(prefix):
                value = view(path[len(prefix) :].strip("/"))
                if value is None:
                    break
                self._send(200, json.dumps(value, indent=2).encode(), "application/json")
                return
        self._send(404, b"not found\n", "text/plain")


def serve(port: int, endpoints: Endpoints, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Bind and serve in a daemon thread; raises OSError when the port is taken."""
    handler = type("Handler", (_Handler,), {"endpoints": endpoints})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
