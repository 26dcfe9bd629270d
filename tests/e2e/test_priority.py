"""Priorities on the real fleet (issue #11): a higher-priority deployment that finds its module
full displaces lower-priority replicas, says so with Events, and its member pods carry the
PriorityClass (copied into the member cluster) so the member's own scheduler agrees; a class
with preemptionPolicy Never waits instead.

paris (a member cluster) has 48 H100 in the test fleet; every deployment here is pinned to it
and asks 8 GPUs per replica, so 6 replicas fill it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.helpers import (
    OperatorProcess,
    apply_json,
    condition,
    delete_all_deployments,
    events_of,
    get_json,
    infd_manifest,
    is_ready,
    placed,
    wait_for,
)

pytestmark = pytest.mark.fleet

NS = "priority-tests"
HIGH = "aifactory-e2e-high"
NEVER = "aifactory-e2e-high-never"


@pytest.fixture(scope="module")
def namespace(operator: OperatorProcess, kubectl: Any) -> Iterator[str]:
    delete_all_deployments(kubectl)
    kubectl("create", "namespace", NS, check=False)
    apply_json(
        kubectl,
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": HIGH},
            "value": 100000,
            "description": "e2e: displaces lower priorities",
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": NEVER},
            "value": 100000,
            "preemptionPolicy": "Never",
            "description": "e2e: high, but never displaces anyone",
        },
    )
    yield NS
    delete_all_deployments(kubectl)
    for name in (HIGH, NEVER):
        kubectl("delete", "priorityclass", name, "--ignore-not-found", check=False)


def pinned(name: str, replicas: int, priority_class: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resources": {"gpusPerReplica": 8, "gpuModels": ["H100"]},
        "replicas": {"fixed": replicas},
        "placement": {"modules": ["paris"]},
    }
    if priority_class:
        spec["priorityClassName"] = priority_class
    return infd_manifest(name, NS, spec)


def obj(kubectl: Any, name: str) -> dict[str, Any]:
    return dict(get_json(kubectl, "infd", "-n", NS, name))


def placed_cond(kubectl: Any, name: str) -> tuple[str, str]:
    c = condition(obj(kubectl, name), "Placed") or {}
    return c.get("status", ""), c.get("reason", "")


def test_higher_priority_displaces_lower_and_never_policy_waits(
    namespace: str, kubectl: Any
) -> None:
    apply_json(kubectl, pinned("low", 6))
    wait_for("low: 6 replicas Ready on paris", lambda: is_ready(obj(kubectl, "low")), timeout=120)
    assert placed(kubectl, NS, "low") == {"paris": 6}

    # Never: as high as it gets, but it waits for room instead of displacing anyone
    apply_json(kubectl, pinned("patient", 1, NEVER))
    wait_for(
        "patient: Unschedulable (paris is full)",
        lambda: placed_cond(kubectl, "patient") == ("False", "Unschedulable"),
        timeout=60,
    )
    assert placed(kubectl, NS, "low") == {"paris": 6}
    assert not events_of(kubectl, NS, "low", "Preempted")
    kubectl("delete", "infd", "-n", NS, "patient", "--timeout=90s")

    # a preempting class: one replica of low goes, high takes its GPUs
    apply_json(kubectl, pinned("high", 1, HIGH))
    wait_for("high Placed and Ready", lambda: is_ready(obj(kubectl, "high")), timeout=120)
    assert placed(kubectl, NS, "high") == {"paris": 1}
    wait_for("low down to 5 on paris", lambda: placed(kubectl, NS, "low") == {"paris": 5})
    assert placed_cond(kubectl, "low") == ("False", "Unschedulable")
    preempted = events_of(kubectl, NS, "low", "Preempted")
    assert preempted, "the displaced deployment has no Preempted Event"
    assert f"{NS}/high" in preempted[-1]["message"]
    assert events_of(kubectl, NS, "high", "Preempting")

    # the member scheduler sees the same priorities: the class is copied into paris and the
    # high deployment's pods carry it
    pc = get_json(kubectl, "priorityclass", HIGH, cluster="paris")
    assert pc["value"] == 100000
    deployments = get_json(kubectl, "deployments", "-n", NS, cluster="paris")["items"]
    classes = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"].get("priorityClassName")
        for d in deployments
    }
    assert classes.get("high-paris") == HIGH
    assert classes.get("low-paris") in (None, "")

    # high gone: low gets its sixth replica back
    kubectl("delete", "infd", "-n", NS, "high", "--timeout=90s")
    wait_for("low back to 6 on paris", lambda: placed(kubectl, NS, "low") == {"paris": 6})
    wait_for("low Ready again", lambda: is_ready(obj(kubectl, "low")), timeout=120)
