"""Observe a module's GPU capacity from its nodes, the way kube-scheduler accounts for it.

Allocatable comes from each node's `nvidia.com/gpu` allocatable, grouped by the GPU model label;
allocated is the sum of GPU requests (limits when no request) of the non-terminal Pods bound to
those nodes. Both are what the scheduler itself uses, so the operator never promises GPUs the
member cluster would refuse.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aifactory.labels import GPU_MODEL_LABEL, GPU_RESOURCE

from .connect import MemberTarget
from .workload import _get_json


@dataclass(frozen=True)
class PoolObservation:
    model: str
    allocatable: int
    allocated: int
    nodes: int
    ready_nodes: int


def _gpus(resources: dict[str, Any] | None) -> int:
    if not resources:
        return 0
    value = resources.get(GPU_RESOURCE)
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


def _pod_gpus(pod: dict[str, Any]) -> int:
    total = 0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources", {})
        total += _gpus(res.get("requests")) or _gpus(res.get("limits"))
    return total


def observe_capacity(target: MemberTarget) -> list[PoolObservation]:
    """GPU pools of the module's nodes; raises ApiException/urllib3 errors when unreachable."""
    query = []
    if target.node_selector:
        query.append(
            ("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(target.node_selector.items())))
        )
    nodes = _get_json(target.api, "/api/v1/nodes", query).get("items", [])
    node_model: dict[str, str] = {}
    alloc: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    ready: dict[str, int] = defaultdict(int)
    for node in nodes:
        gpus = _gpus(node.get("status", {}).get("allocatable"))
        if gpus <= 0:
            continue
        model = node["metadata"].get("labels", {}).get(GPU_MODEL_LABEL, "unknown")
        node_model[node["metadata"]["name"]] = model
        alloc[model] += gpus
        count[model] += 1
        conds = node.get("status", {}).get("conditions", [])
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            ready[model] += 1
    used: dict[str, int] = defaultdict(int)
    if node_model:
        pods = _get_json(
            target.api,
            "/api/v1/pods",
            [("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")],
        ).get("items", [])
        for pod in pods:
            model = node_model.get(pod.get("spec", {}).get("nodeName", ""))
            if model is not None:
                used[model] += _pod_gpus(pod)
    return [
        PoolObservation(
            model=m, allocatable=alloc[m], allocated=used[m], nodes=count[m], ready_nodes=ready[m]
        )
        for m in sorted(alloc)
    ]
