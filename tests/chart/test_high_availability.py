"""Two operator replicas as the chart runs them: kopf peering, distinct priorities.

Both processes use the chart's ServiceAccount token and the identities the chart gives its Pods
(POD_ID and AIFACTORY_POD_NAME from the Pod name), so their priorities differ exactly as two
Pods' would. Killing the active one (SIGKILL: no goodbye in the peering object) must let the
standby take over and reconcile a new InferenceDeployment within 30 seconds.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.chart.conftest import apply_samples
from tests.chart.helpers import (
    CHART,
    NAMESPACE,
    helm,
    sa_kubeconfig,
)
from tests.e2e.helpers import (
    OperatorProcess,
    condition,
    get_json,
    operator_env,
    small_deployment,
    wait_for,
)

from aifactory.settings import OperatorSettings

pytestmark = pytest.mark.fleet

RELEASE = "ha"
PODS = ("ha-aifactory-operator-5c8d7-x2k9q", "ha-aifactory-operator-5c8d7-m4t7z")
LIFETIME = 10  # highAvailability.peeringLifetimeSeconds for the test
TAKEOVER_SECONDS = 30


def _priority(pod: str) -> int:
    return OperatorSettings(standalone=False, pod_name=pod).effective_peering_priority


@pytest.fixture(scope="module")
def replicas(
    hub_ready: None, fleet: Fleet, kubectl: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, OperatorProcess]]:
    apply_samples(fleet)
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        "replicaCount=2",
        "--set",
        "webhook.enabled=false",
        "--set",
        f"highAvailability.peeringLifetimeSeconds={LIFETIME}",
        kubeconfig=fleet.kubeconfig(HUB),
    )
    kubeconfig = sa_kubeconfig(
        kubectl,
        fleet,
        f"{RELEASE}-aifactory-operator",
        tmp_path_factory.mktemp("ha") / "sa.kubeconfig",
    )
    ops = {
        pod: OperatorProcess(
            operator_env(
                kubeconfig,
                POD_ID=pod,
                AIFACTORY_POD_NAME=pod,
                AIFACTORY_STANDALONE="false",
                AIFACTORY_PEERING_LIFETIME=str(LIFETIME),
                # both serve the webhook, neither registers it: as Pods behind the chart's
                # Service, where the chart (not the operator) owns the configuration
                AIFACTORY_WEBHOOK_MANAGED="false",
            ),
            fleet.log_dir / f"operator-{pod}.log",
        )
        for pod in PODS
    }
    for op in ops.values():
        op.log.unlink(missing_ok=True)
        op.start()
    try:
        yield ops
    finally:
        kubectl(
            "delete",
            "infd",
            "-n",
            "batch",
            "ha-before",
            "ha-after",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=90s",
            check=False,
            timeout=120,
        )
        for op in ops.values():
            op.stop()
        helm(
            "uninstall",
            RELEASE,
            "-n",
            NAMESPACE,
            "--wait",
            kubeconfig=fleet.kubeconfig(HUB),
            check=False,
        )


def _placed(kubectl: Any, name: str) -> bool:
    obj = get_json(kubectl, "infd", "-n", "batch", name)
    c = condition(obj, "Placed")
    return bool(
        c
        and c["status"] == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_standby_takes_over_within_30s(replicas: dict[str, OperatorProcess], kubectl: Any) -> None:
    assert _priority(PODS[0]) != _priority(PODS[1])
    active, standby = sorted(PODS, key=_priority, reverse=True)

    def peers() -> set[str]:
        obj = get_json(kubectl, "clusterkopfpeering", "aifactory-operator")
        return set(obj.get("status") or {})

    wait_for(
        "both replicas in the peering object", lambda: {active, standby} <= peers(), timeout=60
    )
    wait_for(
        "the lower-priority replica to stand by",
        lambda: "Pausing operations in favour of" in replicas[standby].logs(),
        timeout=60,
    )
    assert "Pausing" not in replicas[active].logs()

    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("ha-before")))
    wait_for(
        "ha-before placed by the active replica", lambda: _placed(kubectl, "ha-before"), timeout=60
    )

    replicas[active].stop(signal.SIGKILL)  # a crash: its peering record stays until it expires
    killed = time.monotonic()
    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("ha-after")))
    wait_for(
        "ha-after placed by the former standby",
        lambda: _placed(kubectl, "ha-after"),
        timeout=TAKEOVER_SECONDS,
        every=0.5,
    )
    took = time.monotonic() - killed
    assert took < TAKEOVER_SECONDS
    assert "Resuming operations after the pause" in replicas[standby].logs()
    print(f"standby reconciled a new InferenceDeployment {took:.1f}s after the active died")
