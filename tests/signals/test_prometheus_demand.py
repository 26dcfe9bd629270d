"""fetch_demand against a real Prometheus scraping an exporter whose values the test sets.

Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`); without it the tests
fail rather than skip, so CI cannot go green without exercising the real HTTP API.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aifactory.api.deployment import PrometheusDemandSource
from aifactory.signals.demand import (
    REASON_BAD_RESULT,
    REASON_QUERY_FAILED,
    REASON_UNREACHABLE,
    DemandSample,
    DemandSignalError,
    fetch_demand,
)

pytestmark = pytest.mark.timeout(180)

INSTALL_HINT = "install it with: apt-get install -y prometheus (as root; run apt-get update first)"
JOB = "demand-exporter"
STARTUP_TIMEOUT = 60.0
CHANGE_TIMEOUT = 30.0

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (AssertionError, DemandSignalError, OSError) as err:
            last = err
        else:
            if result:
                return result
            last = result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# The exporter: a gauge with exact values and a counter growing at a set rate


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


def _start_prometheus(
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


def _log_tail(tmp: Path) -> str:
    path = tmp / "prometheus.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"the prometheus binary is not on PATH; {INSTALL_HINT}", pytrace=False)
    tmp = tmp_path_factory.mktemp("prometheus")
    with Exporter() as exporter:
        exporter.set_gauge('region="eu-west",pod="a"', 100)
        exporter.set_gauge('region="eu-west",pod="b"', 20)
        exporter.set_gauge('region="us-east",pod="a"', 30)
        exporter.set_gauge('pod="orphan"', 5)  # no region label: skipped
        exporter.set_gauge('region="ap-south",pod="a"', "NaN")  # not a number: skipped
        exporter.set_rate("eu-west", 50)
        exporter.set_rate("us-east", 10)
        proc, url = _start_prometheus(binary, tmp, exporter)
        prom = Prometheus(url, exporter)
        try:

            def target_up() -> bool:
                assert proc.poll() is None, f"prometheus exited:\n{_log_tail(tmp)}"
                result = prom.api(f'up{{job="{JOB}"}}')["data"]["result"]
                return bool(result) and result[0]["value"][1] == "1"

            wait_for(target_up, timeout=STARTUP_TIMEOUT, what="prometheus to scrape the exporter")
            yield prom
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------------------------
# Tests


def test_gauge_is_summed_per_region(prometheus: Prometheus) -> None:
    sample = fetch_demand(prometheus.source("demand_rps"))
    assert sample.requests_per_second == {"eu-west": 120.0, "us-east": 30.0}
    assert sample.series == 3
    assert len(sample.skipped) == 2
    assert any("orphan" in s and "no 'region' label" in s for s in sample.skipped)
    assert any("ap-south" in s and "NaN" in s for s in sample.skipped)
    assert abs((datetime.now(UTC) - sample.timestamp).total_seconds()) < 30


def test_sum_by_region_query_and_timestamp(prometheus: Prometheus) -> None:
    now = datetime.now(UTC)
    sample = fetch_demand(prometheus.source("sum by (region) (demand_rps)"), now=now)
    # sum() of a NaN series stays NaN for that region: it is left out, not zeroed; the
    # orphan series sums into one without a region label
    assert sample.requests_per_second == {"eu-west": 120.0, "us-east": 30.0}
    assert sorted(sample.skipped) == ['{region="ap-south"}: value NaN', "{}: no 'region' label"]
    assert sample.timestamp == now


def test_custom_region_label(prometheus: Prometheus) -> None:
    source = prometheus.source('demand_rps{region="eu-west"}', region_label="pod")
    assert fetch_demand(source).requests_per_second == {"a": 100.0, "b": 20.0}


def test_source_as_a_wire_mapping(prometheus: Prometheus) -> None:
    sample = fetch_demand({"url": prometheus.url + "/", "query": "demand_rps", "timeoutSeconds": 2})
    assert sample.requests_per_second["us-east"] == 30.0


def test_changed_exporter_values_show_up(prometheus: Prometheus) -> None:
    source = prometheus.source("sum by (region) (demand_rps)")
    prometheus.exporter.set_gauge('region="us-east",pod="a"', 75.5)
    try:

        def changed() -> DemandSample | None:
            sample = fetch_demand(source)
            return sample if sample.requests_per_second.get("us-east") == 75.5 else None

        sample = wait_for(changed, timeout=CHANGE_TIMEOUT, what="us-east to become 75.5")
        assert sample.requests_per_second["eu-west"] == 120.0
    finally:
        prometheus.exporter.set_gauge('region="us-east",pod="a"', 30)


def test_rate_of_a_counter(prometheus: Prometheus) -> None:
    source = prometheus.source("sum by (region) (rate(http_requests_total[5s]))")

    def near(expected: dict[str, float]) -> DemandSample | None:
        sample = fetch_demand(source)
        got = sample.requests_per_second
        ok = set(got) == set(expected) and all(
            abs(got[r] - v) <= 0.1 * v for r, v in expected.items()
        )
        return sample if ok else None

    wait_for(lambda: near({"eu-west": 50, "us-east": 10}), timeout=CHANGE_TIMEOUT, what="rates")
    prometheus.exporter.set_rate("us-east", 200)
    wait_for(
        lambda: near({"eu-west": 50, "us-east": 200}),
        timeout=CHANGE_TIMEOUT,
        what="us-east rate to become ~200",
    )


def test_wrong_port_is_unreachable() -> None:
    source = PrometheusDemandSource(url=f"http://127.0.0.1:{free_port()}", query="demand_rps")
    with pytest.raises(DemandSignalError) as info:
        fetch_demand(source)
    assert info.value.reason == REASON_UNREACHABLE
    assert "127.0.0.1" in info.value.message


def test_silent_server_times_out_as_unreachable() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        source = PrometheusDemandSource(
            url=f"http://127.0.0.1:{port}", query="demand_rps", timeout_seconds=0.5
        )
        started = time.monotonic()
        with pytest.raises(DemandSignalError) as info:
            fetch_demand(source)
    assert info.value.reason == REASON_UNREACHABLE
    assert time.monotonic() - started < 5


def test_bad_query_fails(prometheus: Prometheus) -> None:
    with pytest.raises(DemandSignalError) as info:
        fetch_demand(prometheus.source("sum by (region) ("))
    assert info.value.reason == REASON_QUERY_FAILED
    assert "bad_data" in info.value.message


@pytest.mark.parametrize("query", ["42", '"text"', "demand_rps[10s]"])
def test_non_vector_result_is_a_bad_result(prometheus: Prometheus, query: str) -> None:
    with pytest.raises(DemandSignalError) as info:
        fetch_demand(prometheus.source(query))
    assert info.value.reason == REASON_BAD_RESULT
    assert "instant vector" in info.value.message


def test_not_prometheus_is_a_bad_result(prometheus: Prometheus) -> None:
    # the exporter answers 200 with text, not the query API's JSON
    source = PrometheusDemandSource(
        url=f"http://127.0.0.1:{prometheus.exporter.port}", query="demand_rps"
    )
    with pytest.raises(DemandSignalError) as info:
        fetch_demand(source)
    assert info.value.reason == REASON_BAD_RESULT


def test_empty_vector_is_an_empty_sample(prometheus: Prometheus) -> None:
    sample = fetch_demand(prometheus.source("demand_rps{region='nowhere'}"))
    assert sample.requests_per_second == {} and sample.series == 0
