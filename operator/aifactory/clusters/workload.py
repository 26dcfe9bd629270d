"""What the operator writes into member clusters, and how it finds it again.

Every member object carries labels that link it back to its InferenceDeployment and module, so
the operator can list what it owns in a cluster, delete what no placement wants any more, and
converge after being killed half-way: it never relies on remembering what it created.
Writes are server-side applies with one stable field manager, so re-applying is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from aifactory.api import AIFactoryModule, InferenceDeployment
from aifactory.labels import GPU_MODEL_LABEL, GPU_RESOURCE

from .connect import REQUEST_TIMEOUT_SECONDS, MemberTarget

FIELD_MANAGER = "aifactory-operator"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "aifactory-operator"
OWNER_NAME_LABEL = "aifactory.dev/inference-deployment"
OWNER_NAMESPACE_LABEL = "aifactory.dev/inference-namespace"
PLACED_MODULE_LABEL = "aifactory.dev/placed-on"


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
    infd: InferenceDeployment, module: AIFactoryModule, replicas: int, node_selector: dict[str, str]
) -> list[dict[str, Any]]:
    """The Namespace, Deployment and Service one module runs for one InferenceDeployment."""
    spec = infd.spec
    ns = infd.metadata.namespace or "default"
    name = member_object_name(infd.metadata.name, module.metadata.name)
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        OWNER_NAME_LABEL: infd.metadata.name,
        OWNER_NAMESPACE_LABEL: ns,
        PLACED_MODULE_LABEL: module.metadata.name,
        "app.kubernetes.io/name": spec.model.name,
        "app.kubernetes.io/instance": infd.metadata.name,
    }
    selector = {OWNER_NAME_LABEL: infd.metadata.name, PLACED_MODULE_LABEL: module.metadata.name}
    match: list[dict[str, Any]] = [
        {"key": k, "operator": "In", "values": [v]} for k, v in sorted(node_selector.items())
    ]
    # only pools of the module that can serve this model: accepted GPU model and enough memory
    pools = [
        p.model
        for p in module.spec.capacity.gpus
        if (not spec.resources.gpu_models or p.model in spec.resources.gpu_models)
        and p.memory_gib >= (spec.resources.min_gpu_memory_gib or 0)
    ]
    if pools:
        match.append({"key": GPU_MODEL_LABEL, "operator": "In", "values": sorted(set(pools))})
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
    if match:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": match}]
                }
            }
        }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


_PATHS = {
    ("v1", "Namespace"): "/api/v1/namespaces/{name}",
    ("v1", "Service"): "/api/v1/namespaces/{namespace}/services/{name}",
    ("v1", "ConfigMap"): "/api/v1/namespaces/{namespace}/configmaps/{name}",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
}


def _path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return _PATHS[(obj["apiVersion"], obj["kind"])].format(
        name=meta["name"], namespace=meta.get("namespace", "")
    )


def request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """One REST call with short timeouts; non-2xx raises ApiException like the typed clients.

    Raw paths keep this independent of which typed API class a kind lives in, and let one
    helper serve every cluster, kind and verb the operator needs.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    serialized = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT_SECONDS)
    resp.read()  # type: ignore[no-untyped-call]
    if not 200 <= int(resp.status) < 300:
        raise ApiException.from_response(http_resp=resp, body=None, data=None)
    data: dict[str, Any] = json.loads(resp.data) if resp.data else {}
    return data


def apply(api: ApiClient, obj: dict[str, Any]) -> None:
    """Server-side apply with our field manager (idempotent; conflicts forced, we own these)."""
    request(
        api,
        "PATCH",
        _path(obj),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        body=obj,
        content_type="application/apply-patch+yaml",
    )


def _get_json(
    api: ApiClient, path: str, query: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    return request(api, "GET", path, query=query)


def _delete(api: ApiClient, path: str) -> None:
    try:
        request(api, "DELETE", path, query=[("propagationPolicy", "Background")])
    except ApiException as exc:
        if exc.status != 404:
            raise


@dataclass(frozen=True)
class MemberWorkload:
    """One member Deployment the operator owns, as observed."""

    module: str
    name: str
    namespace: str
    replicas: int
    ready_replicas: int


def list_owned(api: ApiClient, infd: InferenceDeployment) -> list[MemberWorkload]:
    """Member Deployments of one InferenceDeployment in one cluster, by label."""
    ns = infd.metadata.namespace or "default"
    data = _get_json(
        api, f"/apis/apps/v1/namespaces/{ns}/deployments", [("labelSelector", owner_selector(infd))]
    )
    out = []
    for item in data.get("items", []):
        meta, status = item["metadata"], item.get("status", {})
        out.append(
            MemberWorkload(
                module=meta["labels"].get(PLACED_MODULE_LABEL, ""),
                name=meta["name"],
                namespace=meta["namespace"],
                replicas=int(item["spec"].get("replicas", 0)),
                ready_replicas=int(status.get("readyReplicas", 0) or 0),
            )
        )
    return out


def apply_module(
    target: MemberTarget, infd: InferenceDeployment, module: AIFactoryModule, replicas: int
) -> None:
    """Create or update one module's share of an InferenceDeployment."""
    for obj in render(infd, module, replicas, target.node_selector):
        apply(target.api, obj)


def delete_module(api: ApiClient, infd: InferenceDeployment, module: str) -> None:
    """Remove one module's Deployment and Service (the namespace stays: it may hold other work)."""
    ns = infd.metadata.namespace or "default"
    name = member_object_name(infd.metadata.name, module)
    _delete(api, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    _delete(api, f"/api/v1/namespaces/{ns}/services/{name}")


def delete_named(api: ApiClient, namespace: str, name: str) -> None:
    """Remove a Deployment and its Service by name (used for orphans found by label)."""
    _delete(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    _delete(api, f"/api/v1/namespaces/{namespace}/services/{name}")
