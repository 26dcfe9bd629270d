"""GitOps tools read our objects right: kstatus (sigs.k8s.io/cli-utils, the library Flux and
friends use, built from its pinned Go module) computes Current / InProgress / Failed from the
conditions the operator writes (Ready, Reconciling, Stalled, observedGeneration) (issue #15).
"""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import pytest
from hack.fleet import Fleet
from hack.fleet.tools import kstatus_binary
from tests.e2e.helpers import (
    OperatorProcess,
    apply_json,
    condition,
    get_json,
    infd_manifest,
    wait_for,
)

pytestmark = pytest.mark.fleet

NS = "kstatus-tests"


def kstatus(fleet: Fleet, kubectl: Any, *what: str) -> dict[str, tuple[str, str]]:
    """ "Kind namespace/name" -> (kstatus status, message) for the listed objects."""
    doc = kubectl("get", *what, "-o", "json").stdout
    out = subprocess.run(
        [str(kstatus_binary())], input=doc, capture_output=True, text=True, check=True
    ).stdout
    result = {}
    for line in out.splitlines():
        kind, ref, status, message = [*line.split("\t"), ""][:4]
        result[f"{kind} {ref}"] = (status, message)
    return result


def set_pod_slots(kubectl: Any, module: str, slots: str) -> None:
    for n in get_json(kubectl, "nodes", "-l", f"aifactory.dev/module={module}")["items"]:
        kubectl(
            "patch",
            "node",
            n["metadata"]["name"],
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"allocatable": {"pods": slots}, "capacity": {"pods": slots}}}),
        )


def test_kstatus_reads_current_in_progress_and_failed(
    operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    kubectl("create", "namespace", NS, check=False)
    fine = infd_manifest(
        "fine",
        NS,
        {"resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]}, "replicas": {"fixed": 1}},
    )
    impossible = infd_manifest(
        "impossible",
        NS,
        {"resources": {"gpusPerReplica": 1, "gpuModels": ["B200"]}, "replicas": {"fixed": 1}},
    )
    waiting = infd_manifest(
        "waiting",
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
            "replicas": {"fixed": 1},
            "placement": {"modules": ["warsaw"]},
        },
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kstatus-broken", "namespace": "aifactory-system"},
        "data": {"kubeconfig": base64.b64encode(b"not: a kubeconfig").decode()},
    }
    module = get_json(kubectl, "afm", "dallas")
    broken = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": "kstatus-broken"},
        "spec": {
            **module["spec"],
            "cluster": {
                "kubeconfigSecretRef": {"namespace": "aifactory-system", "name": "kstatus-broken"}
            },
        },
    }
    set_pod_slots(kubectl, "warsaw", "0")
    try:
        apply_json(kubectl, secret, broken)
        apply_json(kubectl, fine, impossible, waiting)

        def verdicts() -> dict[str, tuple[str, str]]:
            return kstatus(fleet, kubectl, "infd", "-n", NS)

        got = wait_for(
            "kstatus: fine Current, impossible Failed, waiting InProgress",
            lambda: (
                v := verdicts(),
                v.get(f"InferenceDeployment {NS}/fine", ("",))[0] == "Current"
                and v.get(f"InferenceDeployment {NS}/impossible", ("",))[0] == "Failed"
                and v.get(f"InferenceDeployment {NS}/waiting", ("",))[0] == "InProgress"
                and v,
            )[1],
            timeout=90,
        )
        assert "B200" in got[f"InferenceDeployment {NS}/impossible"][1]
        wait_for(
            "kstatus: the module with a broken kubeconfig Failed, the others Current",
            lambda: (
                v := kstatus(fleet, kubectl, "afm"),
                v.get("AIFactoryModule /kstatus-broken", ("",))[0] == "Failed"
                and v.get("AIFactoryModule /paris", ("",))[0] == "Current"
                and v,
            )[1],
            timeout=60,
        )
        stalled = condition(get_json(kubectl, "afm", "kstatus-broken"), "Stalled") or {}
        assert (stalled.get("status"), stalled.get("reason")) == ("True", "InvalidKubeconfig")
        policies = kstatus(fleet, kubectl, "sovpol")
        assert policies and all(s == "Current" for s, _ in policies.values()), policies
        # `kubectl wait` agrees for the Current one
        kubectl("wait", "--for=condition=Ready", "infd", "-n", NS, "fine", "--timeout=30s")
    finally:
        set_pod_slots(kubectl, "warsaw", "110")
        kubectl("delete", "infd", "--all", "-n", NS, "--timeout=60s", check=False, timeout=90)
        kubectl("delete", "afm", "kstatus-broken", check=False)
        kubectl("delete", "secret", "-n", "aifactory-system", "kstatus-broken", check=False)
