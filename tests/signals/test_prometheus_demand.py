"""fetch_demand against a real Prometheus scraping an exporter whose values the test sets.

Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`); without it the tests
fail rather than skip, so CI cannot go green without exercising the real HTTP API.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from tests.prometheus_server import (
    INSTALL_HINT,
    JOB,
    Exporter,
    Prometheus,
    free_port,
    log_tail,
    start_prometheus,
)

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


# --------------------------------------------------------------------------------------------
# The exporter: a gauge with exact values and a counter growing at a set rate


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
        proc, url = start_prometheus(binary, tmp, exporter)
        prom = Prometheus(url, exporter)
        try:

            def target_up() -> bool:
                assert proc.poll() is None, f"prometheus exited:\n{log_tail(tmp)}"
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
