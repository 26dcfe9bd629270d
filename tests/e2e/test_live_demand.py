"""Live demand from a real Prometheus drives replicas; an outage keeps the last known demand."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.helpers import (
    OperatorProcess,
    condition,
    elastic_spec,
    get_json,
    region,
    wait_for,
)
from tests.prometheus_server import (
    INSTALL_HINT,
    JOB,
    Exporter,
    Prometheus,
    log_tail,
    start_prometheus,
)

pytestmark = pytest.mark.fleet

NS = "live-demand-tests"
POLL = 2.0  # AIFACTORY_DEMAND_POLL_INTERVAL of the session operator


@pytest.fixture()
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, Any]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"the prometheus binary is not on PATH; {INSTALL_HINT}", pytrace=False)
    with Exporter() as exporter:
        exporter.set_gauge('region="eu-west"', 300)
        proc, url = start_prometheus(binary, tmp_path, exporter)
        prom = Prometheus(url, exporter)
        try:

            def target_up() -> bool:
                assert proc.poll() is None, f"prometheus exited:\n{log_tail(tmp_path)}"
                try:
                    result = prom.api(f'up{{job="{JOB}"}}')["data"]["result"]
                except OSError:
                    return False
                return bool(result) and result[0]["value"][1] == "1"

            wait_for("prometheus scraping the exporter", target_up, timeout=60)
            yield prom, proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)


def _status(kubectl: Any) -> dict[str, Any]:
    return get_json(kubectl, "infd", "-n", NS, "live")


def test_replicas_follow_prometheus_and_survive_its_outage(
    operator: OperatorProcess, kubectl: Any, prometheus: tuple[Prometheus, Any]
) -> None:
    prom, proc = prometheus
    kubectl("create", "namespace", NS, check=False)
    manifest = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "live", "namespace": NS},
        "spec": {
            "model": {"name": "live", "image": "registry.example/serve:1.0"},
            **elastic_spec(
                region("eu-west", 100),
                min_replicas=1,
                max_latency_ms=40,
                prometheus={"url": prom.url, "query": "sum by (region) (demand_rps)"},
            ),
        },
    }
    kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    try:

        def replicas(n: int) -> bool:
            obj = _status(kubectl)
            c = condition(obj, "Ready")
            return bool(obj.get("status", {}).get("replicas") == n and c and c["status"] == "True")

        # static spec says 100 rps (1 replica); Prometheus says 300 rps -> 3 replicas
        wait_for("3 replicas from live demand", lambda: replicas(3), timeout=60)
        signal = condition(_status(kubectl), "DemandSignal")
        assert (
            signal is not None and signal["status"] == "True" and "eu-west=300" in signal["message"]
        )
        prom.exporter.set_gauge('region="eu-west"', 500)
        wait_for("5 replicas after demand rose", lambda: replicas(5), timeout=60)

        proc.terminate()
        proc.wait(timeout=15)

        def unreachable() -> dict[str, Any] | None:
            c = condition(_status(kubectl), "DemandSignal")
            return c if c and c["status"] == "False" else None

        cond = wait_for("DemandSignal False", unreachable, timeout=30)
        assert cond["reason"] == "PrometheusUnreachable"
        assert "keeping the demand read at" in cond["message"]
        # several poll intervals later the last known demand still holds: no scale to zero
        deadline = time.monotonic() + 3 * POLL
        while time.monotonic() < deadline:
            st = _status(kubectl)["status"]
            assert st["replicas"] == 5 and st["observedDemand"] == {"eu-west": 500.0}
            time.sleep(0.5)
    finally:
        kubectl("delete", "infd", "-n", NS, "live", "--timeout=60s", check=False, timeout=90)
