"""Derive a local fleet from AIFactoryModule manifests, so samples and clusters always agree.

A module with `kubeconfigSecretRef` becomes a member cluster named after the Secret; a module
with `nodeSelector` becomes node pools on the hub. Every GPU pool of a module becomes kwok nodes
with the same model and count, so what the operator discovers is what the manifest declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aifactory.labels import MODULE_LABEL

from .fleet import HUB, FleetConfig, NodePool

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _gpus_per_node(count: int) -> int:
    for size in (16, 8, 4, 2):
        if count % size == 0:
            return size
    return 1


def module_docs(path: Path) -> list[dict[str, Any]]:
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    out = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "AIFactoryModule":
                out.append(doc)
    return out


def config_from_modules(
    path: Path = SAMPLES / "modules.yaml",
    *,
    root: Path = Path(".fleet"),
    ready_timeout: float = 120.0,
) -> FleetConfig:
    members: list[str] = []
    pools: dict[str, list[NodePool]] = {HUB: []}
    for doc in module_docs(path):
        name = doc["metadata"]["name"]
        cluster_spec = doc["spec"]["cluster"]
        if "kubeconfigSecretRef" in cluster_spec:
            cluster = cluster_spec["kubeconfigSecretRef"]["name"]
            if cluster not in members:
                members.append(cluster)
        else:
            selector = cluster_spec.get("nodeSelector") or {}
            if selector.get(MODULE_LABEL) != name:
                raise ValueError(
                    f"module {name}: the local fleet labels node pools with "
                    f"{MODULE_LABEL}={name}; use that as nodeSelector"
                )
            cluster = HUB
        for gpu in doc["spec"]["capacity"]["gpus"]:
            count = int(gpu["count"])
            if count <= 0:
                continue
            size = _gpus_per_node(count)
            pools.setdefault(cluster, []).append(
                NodePool(
                    module=name, gpu_model=gpu["model"], nodes=count // size, gpus_per_node=size
                )
            )
    return FleetConfig(
        root=root,
        members=tuple(members),
        pools={k: tuple(v) for k, v in pools.items()},
        ready_timeout=ready_timeout,
    )
