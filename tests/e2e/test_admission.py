"""Admission never blocks deletion, finalizer removal or status updates, even with no operator.

The session operator manages its webhook configuration with the default failurePolicy Fail, so
while it is stopped every InferenceDeployment write the configuration matches is refused. What
a user (or Kubernetes itself) needs to clean up must not be among those writes: deleting a
namespace, removing our finalizer by hand as documented, status updates by anyone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hack.fleet import Fleet
from tests.e2e.helpers import (
    OperatorProcess,
    all_modules_ready,
    condition,
    get_json,
    small_deployment,
    wait_for,
)

from aifactory.controllers.runtime import FINALIZER
from aifactory.controllers.startup import WEBHOOK_CONFIGURATION

pytestmark = pytest.mark.fleet

OWNER = "aifactory.dev/inference-deployment"


def _infd(kubectl: Any, ns: str, name: str) -> dict[str, Any] | None:
    out = kubectl("get", "infd", "-n", ns, name, "-o", "json", check=False)
    if out.returncode != 0:
        assert "NotFound" in out.stderr, out.stderr
        return None
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def _ready(kubectl: Any, ns: str, name: str) -> dict[str, Any] | None:
    obj = _infd(kubectl, ns, name)
    if obj is None or FINALIZER not in obj["metadata"].get("finalizers", []):
        return None
    c = condition(obj, "Ready")
    wanted = obj.get("status", {}).get("replicas", 0)
    ok = c and c["status"] == "True" and obj["status"].get("readyReplicas") == wanted > 0
    return obj if ok else None


def _member_objects(kubectl: Any, fleet: Fleet, name: str) -> list[str]:
    """Member Deployments and Services of an InferenceDeployment, in every cluster."""
    found = []
    for cluster in fleet.clusters:
        items = get_json(
            kubectl, "deployments,services", "-A", "-l", f"{OWNER}={name}", cluster=cluster
        )["items"]
        found += [f"{cluster}/{i['kind']}/{i['metadata']['name']}" for i in items]
    return found


def test_deleting_a_named_policy_pauses_placement_and_never_blocks_deletion(
    operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    policy = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "SovereigntyPolicy",
        "metadata": {"name": "named-eea-only"},
        # binds no namespace by itself: only deployments that name it
        "spec": {
            "namespaceSelector": {"matchLabels": {"aifactory.dev/test": "nothing"}},
            "allowedJurisdictions": ["EEA"],
            "dataResidency": "None",
            "enforcement": "Enforce",
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(policy))
    infd = small_deployment("names-a-policy")
    infd["spec"]["sovereigntyPolicies"] = ["named-eea-only"]
    kubectl("apply", "-f", "-", input=json.dumps(infd))
    placed = wait_for(
        "names-a-policy Ready", lambda: _ready(kubectl, "batch", "names-a-policy"), timeout=120
    )
    replicas = placed["status"]["readyReplicas"]
    members = _member_objects(kubectl, fleet, "names-a-policy")
    assert members

    kubectl("delete", "sovpol", "named-eea-only", "--timeout=30s")

    def paused() -> dict[str, Any] | None:
        obj = _infd(kubectl, "batch", "names-a-policy")
        c = condition(obj or {}, "Placed")
        return obj if c and c["status"] == "False" and c["reason"] == "PolicyNotFound" else None

    obj = wait_for("Placed=False, reason PolicyNotFound", paused, timeout=60)
    assert "named-eea-only" in condition(obj, "Placed")["message"]
    # placement is paused, not undone: the running replicas stay
    assert obj["status"]["readyReplicas"] == replicas
    assert _member_objects(kubectl, fleet, "names-a-policy") == members

    # the finalizer's removal is never refused: the delete completes
    kubectl("delete", "infd", "-n", "batch", "names-a-policy", "--timeout=60s", timeout=90)
    assert _infd(kubectl, "batch", "names-a-policy") is None
    assert _member_objects(kubectl, fleet, "names-a-policy") == []


def test_without_the_operator_cleanup_is_never_blocked(
    operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    ns = "admission-cleanup"
    kubectl("create", "namespace", ns, check=False)
    for name in ("in-doomed-namespace", "finalizer-by-hand"):
        kubectl("apply", "-f", "-", input=json.dumps(small_deployment(name, namespace=ns)))
    for name in ("in-doomed-namespace", "finalizer-by-hand"):
        wait_for(f"{name} Ready", lambda name=name: _ready(kubectl, ns, name), timeout=120)

    operator.kill()  # gone without a goodbye: its webhook configuration stays
    try:
        _cleanup_without_the_operator(kubectl, ns)
    finally:
        operator.start()
        operator.wait_serving()
    # ... and the operator, once back, removes what a hand-removed finalizer left behind
    wait_for(
        "member objects of the hand-finalized deployments removed",
        lambda: (
            not _member_objects(kubectl, fleet, "in-doomed-namespace")
            and not _member_objects(kubectl, fleet, "finalizer-by-hand")
        ),
        timeout=90,
    )
    wait_for("every sample module Ready", lambda: all_modules_ready(kubectl), timeout=90)


def _cleanup_without_the_operator(kubectl: Any, ns: str) -> None:
    vwc = get_json(kubectl, "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION)
    hook = next(w for w in vwc["webhooks"] if "inferencedeployments" in w["rules"][0]["resources"])
    assert hook["failurePolicy"] == "Fail"

    # the webhook is really down: a spec change waits for the operator
    refused = kubectl(
        "patch",
        "infd",
        "-n",
        ns,
        "finalizer-by-hand",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": {"fixed": 3}}}),
        check=False,
    )
    assert refused.returncode != 0 and "failed calling webhook" in refused.stderr, refused.stderr

    # (c) status updates are never sent to it
    kubectl(
        "patch",
        "infd",
        "-n",
        ns,
        "finalizer-by-hand",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"replicasSummary": "edited while the operator is down"}}),
    )
    # nor label changes or the removal of our finalizer (as documented, by hand)
    kubectl("label", "infd", "-n", ns, "finalizer-by-hand", "team=platform")
    kubectl(
        "patch",
        "infd",
        "-n",
        ns,
        "finalizer-by-hand",
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]),
    )
    obj = _infd(kubectl, ns, "finalizer-by-hand")
    assert obj is not None and not obj["metadata"].get("finalizers")
    assert obj["status"]["replicasSummary"] == "edited while the operator is down"

    # (b) deleting the namespace is not blocked: the InferenceDeployment waits only for our
    # finalizer, which is removed by hand, and the namespace goes
    kubectl("delete", "namespace", ns, "--wait=false")

    def deleting() -> bool:
        obj = _infd(kubectl, ns, "in-doomed-namespace")
        return bool(obj and obj["metadata"].get("deletionTimestamp"))

    wait_for("the namespace controller to delete the InferenceDeployment", deleting, timeout=60)
    kubectl(
        "patch",
        "infd",
        "-n",
        ns,
        "in-doomed-namespace",
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]),
    )
    wait_for(
        f"namespace {ns} gone",
        lambda: kubectl("get", "namespace", ns, check=False).returncode != 0,
        timeout=90,
    )
    # member objects outlive a finalizer removed by hand while the operator is down ...
