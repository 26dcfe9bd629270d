"""What the operator writes into member clusters, and how it finds it again.

Every member object carries labels that link it back to its InferenceDeployment and module, so
the operator can find what it owns in a cluster (informers watch them by label), delete what no
placement wants any more, and converge after being killed half-way: it never relies on
remembering what it created. Writes are server-side applies with one stable field manager, so
re-applying is a no-op; the rendered objects' digest is kept in an annotation so an unchanged
module is not applied again at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from aifactory.api import InferenceDeployment
from aifactory.labels import GPU_MODEL_LABEL, GPU_RESOURCE

from .observe import (
    MANAGED_BY,
    MANAGED_BY_VALUE,
    OWNER_NAME_LABEL,
    OWNER_NAMESPACE_LABEL,
    PLACED_MODULE_LABEL,
    SPEC_HASH_ANNOTATION,
)
from .rest import ClusterClient

FIELD_MANAGER = "aifactory-operator"


def member_object_name(infd_name: str, module: str) -> str:
    """`<infd>-<module>`, shortened with a hash to fit the 63-character DNS label limit.

    The module is part of the name because several node-pool modules share the hub cluster.
    """
    name = f"{infd_name}-{module}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def owner_selector(infd: InferenceDeployment) -> str:
    """Label selector matching every member object of one InferenceDeployment."""
    ns = infd.metadata.namespace or "default"
    return (
        f"{MANAGED_BY}={MANAGED_BY_VALUE},"
        f"{OWNER_NAME_LABEL}={infd.metadata.name},{OWNER_NAMESPACE_LABEL}={ns}"
    )


def render(
    infd: InferenceDeployment,
    module: str,
    replicas: int,
    node_selector: dict[str, str],
    gpu_models: Iterable[str],
    *,
    priority_class: str | None = None,
) -> list[dict[str, Any]]:
    """The Deployment and Service one module runs for one InferenceDeployment.

    `gpu_models` are the module's GPU pools the replicas may use (node affinity on the GPU
    model label): the pools the engine chose, so the member scheduler uses the GPUs the
    operator accounted for. The Deployment carries the digest of both objects.
    """
    spec = infd.spec
    ns = infd.metadata.namespace or "default"
    name = member_object_name(infd.metadata.name, module)
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        OWNER_NAME_LABEL: infd.metadata.name,
        OWNER_NAMESPACE_LABEL: ns,
        PLACED_MODULE_LABEL: module,
        "app.kubernetes.io/name": spec.model.name,
        "app.kubernetes.io/instance": infd.metadata.name,
    }
    selector = {OWNER_NAME_LABEL: infd.metadata.name, PLACED_MODULE_LABEL: module}
    match: list[dict[str, Any]] = [
        {"key": k, "operator": "In", "values": [v]} for k, v in sorted(node_selector.items())
    ]
    pools = sorted(set(gpu_models))
    if pools:
        match.append({"key": GPU_MODEL_LABEL, "operator": "In", "values": pools})
    container: dict[str, Any] = {
        "name": "server",
        "image": spec.model.image,
        "ports": [{"name": "http", "containerPort": spec.model.port}],
        "resources": {"limits": {GPU_RESOURCE: str(spec.resources.gpus_per_replica)}},
    }
    if spec.model.args:
        container["args"] = list(spec.model.args)
    if spec.model.env:
        container["env"] = [e.model_dump(by_alias=True, exclude_none=True) for e in spec.model.env]
    pod_spec: dict[str, Any] = {"containers": [container]}
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    if match:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": match}]
                }
            }
        }
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": {}},
        "spec": {
            "replicas": replicas,
            # a template change (image, env) rolls make-before-break inside the member too
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    deployment["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = digest([deployment, service])
    return [deployment, service]


def digest(objects: list[dict[str, Any]]) -> str:
    """A short, stable digest of rendered objects, without the digest annotation itself and
    without spec.replicas (a count change is a scale, not a new template)."""
    clean = json.loads(json.dumps(objects, sort_keys=True))
    for obj in clean:
        obj.get("metadata", {}).get("annotations", {}).pop(SPEC_HASH_ANNOTATION, None)
        obj.get("spec", {}).pop("replicas", None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


_PATHS = {
    ("v1", "Namespace"): "/api/v1/namespaces/{name}",
    ("v1", "Service"): "/api/v1/namespaces/{namespace}/services/{name}",
    ("v1", "ConfigMap"): "/api/v1/namespaces/{namespace}/configmaps/{name}",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    ("scheduling.k8s.io/v1", "PriorityClass"): "/apis/scheduling.k8s.io/v1/priorityclasses/{name}",
}


def object_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return _PATHS[(obj["apiVersion"], obj["kind"])].format(
        name=meta["name"], namespace=meta.get("namespace", "")
    )


def apply(client: ClusterClient, obj: dict[str, Any]) -> None:
    """Server-side apply with our field manager; raises ClusterError."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    client.apply(object_path(obj), obj, FIELD_MANAGER, what=f"apply {obj['kind']} {where}")


def ensure_namespace(client: ClusterClient, namespace: str) -> None:
    apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def delete_named(client: ClusterClient, namespace: str, name: str) -> bool:
    """Remove a member Deployment and its Service by name; False when both were gone."""
    a = client.delete(
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        what=f"delete Deployment {namespace}/{name}",
    )
    b = client.delete(
        f"/api/v1/namespaces/{namespace}/services/{name}",
        what=f"delete Service {namespace}/{name}",
    )
    return a or b


def scale(client: ClusterClient, namespace: str, name: str, replicas: int) -> None:
    """Set only spec.replicas (make-before-break holds an old count without re-rendering)."""
    client.merge_patch(
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
        {"spec": {"replicas": replicas}},
        what=f"scale Deployment {namespace}/{name}",
    )
