"""The local fleet behaves like real clusters: GPU nodes exist, Pods schedule and run on them."""

from __future__ import annotations

import json

import pytest
from hack.fleet import HUB, Fleet

from aifactory.labels import GPU_MODEL_LABEL, GPU_RESOURCE, MODULE_LABEL

pytestmark = pytest.mark.fleet


def _deployment(name: str, gpus: int, replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": "serve",
                                "image": "registry.example/serve:1.0",
                                "resources": {"limits": {GPU_RESOURCE: str(gpus)}},
                            }
                        ]
                    },
                },
            },
        }
    )


def test_every_cluster_has_labelled_gpu_nodes(fleet: Fleet, kubectl) -> None:
    for cluster in fleet.clusters:
        nodes = json.loads(kubectl("get", "nodes", "-o", "json", cluster=cluster).stdout)["items"]
        assert nodes, f"{cluster} has no nodes"
        for node in nodes:
            labels = node["metadata"]["labels"]
            assert labels[MODULE_LABEL]
            assert labels[GPU_MODEL_LABEL]
            assert int(node["status"]["allocatable"][GPU_RESOURCE]) > 0
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
            assert ready["Ready"] == "True", f"{node['metadata']['name']} in {cluster} is not Ready"


def test_hub_lists_gpu_nodes_with_module_column(kubectl) -> None:
    out = kubectl("get", "nodes", "-L", MODULE_LABEL, cluster=HUB).stdout
    header, *rows = out.strip().splitlines()
    assert "MODULE" in header
    assert rows
    modules = {row.split()[-1] for row in rows}
    assert {"oslo", "frankfurt", "singapore", "warsaw"} <= modules


def test_gpu_deployment_runs_and_oversized_one_stays_pending(fleet: Fleet, kubectl) -> None:
    member = fleet.members[0]
    kubectl("apply", "-f", "-", input=_deployment("fits", gpus=2, replicas=2), cluster=member)
    kubectl("apply", "-f", "-", input=_deployment("too-big", gpus=64, replicas=1), cluster=member)
    try:
        kubectl(
            "rollout", "status", "deployment/fits", "--timeout=120s", cluster=member, timeout=150
        )
        pods = json.loads(
            kubectl("get", "pods", "-l", "app=fits", "-o", "json", cluster=member).stdout
        )
        assert len(pods["items"]) == 2
        gpu_nodes = {
            n["metadata"]["name"]
            for n in json.loads(kubectl("get", "nodes", "-o", "json", cluster=member).stdout)[
                "items"
            ]
            if int(n["status"]["allocatable"].get(GPU_RESOURCE, 0)) >= 2
        }
        for pod in pods["items"]:
            assert pod["status"]["phase"] == "Running"
            assert pod["spec"]["nodeName"] in gpu_nodes

        kubectl(
            "wait",
            "pod",
            "-l",
            "app=too-big",
            "--for=condition=PodScheduled=false",
            "--timeout=60s",
            cluster=member,
            timeout=90,
        )
        pending = json.loads(
            kubectl("get", "pods", "-l", "app=too-big", "-o", "json", cluster=member).stdout
        )
        (pod,) = pending["items"]
        assert pod["status"]["phase"] == "Pending"
        scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        assert scheduled["reason"] == "Unschedulable"
        assert f"Insufficient {GPU_RESOURCE}" in scheduled["message"]
    finally:
        kubectl(
            "delete", "deployment", "fits", "too-big", "--wait=false", cluster=member, check=False
        )


def test_stop_and_start_one_member_apiserver(fleet: Fleet, kubectl) -> None:
    member = fleet.members[-1]
    fleet.stop(member)
    try:
        down = kubectl("get", "--raw", "/readyz", cluster=member, check=False, timeout=30)
        assert down.returncode != 0
        # the other clusters are unaffected
        assert kubectl("get", "--raw", "/readyz", cluster=HUB).stdout.strip() == "ok"
    finally:
        fleet.start(member)
    assert kubectl("get", "--raw", "/readyz", cluster=member).stdout.strip() == "ok"
    # back means scheduling again, not only /readyz: a Pod created now runs at once
    kubectl("run", "after-restart", "--image=registry.k8s.io/pause:3.10", cluster=member)
    try:
        kubectl(
            "wait",
            "pod/after-restart",
            "--for=jsonpath={.status.phase}=Running",
            "--timeout=15s",
            cluster=member,
            timeout=30,
        )
    finally:
        kubectl("delete", "pod", "after-restart", "--wait=false", cluster=member, check=False)


def test_members_serve_the_pinned_gateway_api_and_the_hub_does_not(fleet: Fleet, kubectl) -> None:
    from hack.fleet import tools

    version = tools.versions()["gateway-api"]
    for member in fleet.members:
        crd = json.loads(
            kubectl(
                "get", "crd", "httproutes.gateway.networking.k8s.io", "-o", "json", cluster=member
            ).stdout
        )
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == version
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
    hub = kubectl("get", "crd", "httproutes.gateway.networking.k8s.io", cluster=HUB, check=False)
    assert hub.returncode != 0 and "NotFound" in hub.stderr
