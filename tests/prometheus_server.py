"""A real Prometheus server scraping an exporter whose values a test sets.

Shared by the live-demand tests of the signal source and of the operator. Needs the
`prometheus` binary (Debian: `apt-get install -y prometheus`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aifactory.api.deployment import PrometheusDemandSource

INSTALL_HINT = "install it with: apt-get install -y prometheus (as root; run apt-get update first)"
JOB = "demand-exporter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _Counter:
    rate: float
    base: float = 1000.0
    since: float = field(default_factory=time.monotonic)

    def value(self, now: float) -> float:
        return self.base + self.rate * (now - self.since)

    def set_rate(self, rate: float) -> None:
        now = time.monotonic()
        self.base, self.since, self.rate = self.value(now), now, rate


class Exporter:
    """Serves /metrics in the Prometheus text format from values the test changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: label string (without braces) -> value, for the gauge demand_rps
        self.gauges: dict[str, float | str] = {}
        #: region -> counter, for http_requests_total
        self.counters: dict[str, _Counter] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def render(self) -> str:
        now = time.monotonic()
        with self.lock:
            lines = ["# TYPE demand_rps gauge"]
            lines += [f"demand_rps{{{labels}}} {value}" for labels, value in self.gauges.items()]
            lines.append("# TYPE http_requests_total counter")
            lines += [
                f'http_requests_total{{region="{region}"}} {counter.value(now):.6f}'
                for region, counter in self.counters.items()
            ]
        return "\n".join(lines) + "\n"

    def set_gauge(self, labels: str, value: float | str) -> None:
        with self.lock:
            self.gauges[labels] = value

    def clear_gauge(self, labels: str) -> None:
        """Stop exporting that series (Prometheus marks it stale at the next scrape)."""
        with self.lock:
            self.gauges.pop(labels, None)

    def set_rate(self, region: str, rate: float) -> None:
        with self.lock:
            if region in self.counters:
                self.counters[region].set_rate(rate)
            else:
                self.counters[region] = _Counter(rate)

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------
# Prometheus


@dataclass
class Prometheus:
    url: str
    exporter: Exporter

    def source(self, query: str, **extra: Any) -> PrometheusDemandSource:
        return PrometheusDemandSource(url=self.url, query=query, **extra)

    def api(self, query: str) -> Any:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)


def start_prometheus(
    binary: str, tmp: Path, exporter: Exporter
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter.port}']\n"
    )
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def log_tail(tmp: Path) -> str:
    path = tmp / "prometheus.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
