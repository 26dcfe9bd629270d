"""The router's routing where routers consume it: one JSON document, a ConfigMap, HTTPRoutes.

* `routing_document`: per region, per tier, the modules with their weights, member cluster and
  Service; the same JSON is in the ConfigMap `<router>-routing` next to the router on the hub
  and at `/routing/<namespace>/<name>` on the operator's HTTP port;
* `http_routes`: one Gateway API `HTTPRoute` (gateway.networking.k8s.io/v1, standard channel)
  per member cluster that serves a tier, named after the router, in its namespace: one rule per
  tier that matches the tier header (`X-AIFactory-Tier: <tier deployment>` by default) and
  sends to the tier's Services in that cluster, weighted by their Ready replicas.

Everything derives from the router's status routing, which counts Ready replicas only, so
weights move only once new replicas are Ready (make-before-break). Pure: manifests out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aifactory.api.common import GROUP_VERSION
from aifactory.api.router import InferenceRouter, InferenceRouterStatus
from aifactory.clusters import member_object_name

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "aifactory-operator"
ROUTER_LABEL = "aifactory.dev/inference-router"
DIGEST_ANNOTATION = "aifactory.dev/routing-digest"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
HTTPROUTES = "httproutes"
#: Gateway API limits: rules per route, backendRefs per rule.
MAX_RULES = 16
MAX_BACKENDS = 16
#: The port of the Services the operator renders for every module (clusters/workload.py).
SERVICE_PORT = 80


def service_name(tier: str, module: str) -> str:
    """The Service of a tier deployment on a module (as clusters.render names it)."""
    return member_object_name(tier, module)


def routing_document(
    router: InferenceRouter,
    status: InferenceRouterStatus,
    cluster_of: Mapping[str, str],
    header: str,
) -> dict[str, Any]:
    """The routing JSON: what a global load balancer needs to send requests by region and tier.

    `cluster_of`: module -> the member cluster's name (the hub's node pools: "hub").
    """
    ns = router.namespace
    regions = []
    for r in status.routing:
        tiers = []
        for t in r.tiers:
            tiers.append(
                {
                    "tier": t.deployment,
                    "share": t.share,
                    "requestsPerSecond": t.requests_per_second,
                    "latencyMs": t.latency_ms,
                    "targets": [
                        {
                            "module": m.module,
                            "weight": m.weight,
                            "cluster": cluster_of.get(m.module, "unknown"),
                            "service": f"{service_name(t.deployment, m.module)}.{ns}.svc",
                        }
                        for m in t.modules
                    ],
                }
            )
        regions.append(
            {"region": r.region, "requestsPerSecond": r.requests_per_second, "tiers": tiers}
        )
    blended = status.blended.model_dump(by_alias=True, exclude_none=True) if status.blended else {}
    return {
        "router": router.ref,
        "generation": router.metadata.generation,
        "header": header,
        "shares": dict(status.shares or {}),
        "regions": regions,
        "blended": blended,
    }


def routing_configmap(router: InferenceRouter, document: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap `<router>-routing` on the hub, owned by the router (deleted with it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{router.name}-routing",
            "namespace": router.namespace,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE, ROUTER_LABEL: router.name},
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "InferenceRouter",
                    "name": router.name,
                    "uid": router.metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {"routing.json": json.dumps(document, indent=2, sort_keys=True)},
    }


def parent_ref(setting: str) -> dict[str, str] | None:
    """`namespace/name` or `name` of the Gateway routes attach to; "" attaches to none."""
    if not setting:
        return None
    ns, _, name = setting.rpartition("/")
    ref = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": name}
    if ns:
        ref["namespace"] = ns
    return ref


def http_routes(
    router: InferenceRouter,
    ready: Sequence[tuple[str, Mapping[str, int]]],
    cluster_of: Mapping[str, str],
    *,
    header: str,
    gateway: str = "",
) -> dict[str, dict[str, Any]]:
    """cluster key -> the HTTPRoute for that cluster.

    `ready`: per tier in spec order, (tier deployment, module -> Ready replicas that may serve:
    forbidden modules already left out); `cluster_of`: module -> cluster key. A cluster where
    no tier has a Ready replica gets no route.
    """
    rules_by_cluster: dict[str, list[dict[str, Any]]] = {}
    for tier, modules in ready:
        by_cluster: dict[str, list[tuple[str, int]]] = {}
        for module, n in sorted(modules.items()):
            key = cluster_of.get(module)
            if key is not None and n > 0:
                by_cluster.setdefault(key, []).append((module, n))
        for key, backends in by_cluster.items():
            rules = rules_by_cluster.setdefault(key, [])
            if len(rules) >= MAX_RULES:
                continue
            rules.append(
                {
                    "name": tier,
                    "matches": [{"headers": [{"type": "Exact", "name": header, "value": tier}]}],
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": service_name(tier, module),
                            "port": SERVICE_PORT,
                            "weight": n,
                        }
                        for module, n in backends[:MAX_BACKENDS]
                    ],
                }
            )
    parent = parent_ref(gateway)
    out: dict[str, dict[str, Any]] = {}
    for key, rules in rules_by_cluster.items():
        spec: dict[str, Any] = {"rules": rules}
        if parent is not None:
            spec["parentRefs"] = [parent]
        route: dict[str, Any] = {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "HTTPRoute",
            "metadata": {
                "name": router.name,
                "namespace": router.namespace,
                "labels": {
                    MANAGED_BY: MANAGED_BY_VALUE,
                    ROUTER_LABEL: router.name,
                    "aifactory.dev/inference-router-namespace": router.namespace,
                },
                "annotations": {},
            },
            "spec": spec,
        }
        route["metadata"]["annotations"][DIGEST_ANNOTATION] = digest(route)
        out[key] = route
    return out


def digest(obj: Mapping[str, Any]) -> str:
    """A short digest of a manifest without its digest annotation (skip unchanged applies)."""
    clean = json.loads(json.dumps(obj, sort_keys=True))
    clean.get("metadata", {}).get("annotations", {}).pop(DIGEST_ANNOTATION, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


def route_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GATEWAY_GROUP}/{GATEWAY_VERSION}/namespaces/{namespace}/{HTTPROUTES}"
    return f"{base}/{name}" if name else base


__all__ = [
    "DIGEST_ANNOTATION",
    "GATEWAY_GROUP",
    "GATEWAY_VERSION",
    "HTTPROUTES",
    "ROUTER_LABEL",
    "digest",
    "http_routes",
    "parent_ref",
    "route_path",
    "routing_configmap",
    "routing_document",
    "service_name",
]
