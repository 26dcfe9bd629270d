"""Clients for the clusters behind modules, cached per module and rebuilt when the Secret changes.

A remote module's kubeconfig lives in a Secret on the hub; a node-pool module runs on the hub's
own nodes. Either way the rest of the operator gets a `MemberTarget`: an API client plus the node
selector that confines workloads to the module's nodes.

Kubeconfigs are credentials: nothing in this module logs them, and errors carry only the
Secret's coordinates and the kind of failure, never the content.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field

import yaml
from kubernetes import client
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.kube_config import KubeConfigLoader

from aifactory.api import AIFactoryModule

#: Short timeouts: an unreachable member must not stall a reconcile for minutes.
REQUEST_TIMEOUT_SECONDS: tuple[float, float] = (3.0, 10.0)

HUB_CLUSTER = "hub"


class ClusterAccessError(Exception):
    """A module's cluster cannot be used. `reason` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class MemberTarget:
    """Where a module's workloads go: a cluster client and the nodes within it."""

    #: "hub" for node-pool modules, else "secret:<ns>/<name>" (modules may share a cluster)
    cluster_key: str
    api: ApiClient
    node_selector: dict[str, str] = field(default_factory=dict)

    @property
    def is_hub(self) -> bool:
        return self.cluster_key == HUB_CLUSTER


def _configuration_from_kubeconfig(raw: str, where: str) -> Configuration:
    try:
        data = yaml.safe_load(raw)
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        cfg = Configuration()
        KubeConfigLoader(config_dict=data).load_and_set(cfg)  # type: ignore[no-untyped-call]
    except Exception as exc:
        # the exception text may quote the file; report only its type
        raise ClusterAccessError(
            "InvalidKubeconfig", f"{where} does not hold a usable kubeconfig ({type(exc).__name__})"
        ) from None
    cfg.retries = 0
    return cfg


class MemberClients:
    """One API client per member cluster, shared by every module that points at it."""

    def __init__(self, hub: ApiClient) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        #: cluster_key -> (secret resourceVersion, client)
        self._cache: dict[str, tuple[str, ApiClient]] = {}

    @property
    def hub(self) -> ApiClient:
        return self._hub

    def target(self, module: AIFactoryModule) -> MemberTarget:
        """Resolve a module to a cluster client; raises ClusterAccessError with a reason."""
        cluster = module.spec.cluster
        if cluster.node_selector:
            return MemberTarget(HUB_CLUSTER, self._hub, dict(cluster.node_selector))
        ref = cluster.kubeconfig_secret_ref
        if ref is None:  # the CRD's CEL rule makes this unreachable for stored objects
            raise ClusterAccessError("InvalidClusterRef", "spec.cluster names no cluster")
        where = f"Secret {ref.namespace}/{ref.name} key {ref.key!r}"
        try:
            secret = client.CoreV1Api(self._hub).read_namespaced_secret(
                ref.name, ref.namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterAccessError("SecretNotFound", f"{where} not found") from None
            if exc.status == 403:
                raise ClusterAccessError(
                    "SecretForbidden", f"{where} cannot be read (forbidden)"
                ) from None
            raise ClusterAccessError(
                "SecretUnreadable", f"{where} cannot be read (HTTP {exc.status})"
            ) from None
        key = f"secret:{ref.namespace}/{ref.name}/{ref.key}"
        meta = secret.metadata
        version = f"{meta.uid}/{meta.resource_version}" if meta else ""
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] == version:
                return MemberTarget(key, cached[1])
        encoded = (secret.data or {}).get(ref.key)
        if not encoded:
            raise ClusterAccessError("KubeconfigKeyMissing", f"{where} is missing")
        try:
            raw = base64.b64decode(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            raise ClusterAccessError(
                "InvalidKubeconfig", f"{where} is not valid base64 text"
            ) from None
        api = ApiClient(_configuration_from_kubeconfig(raw, where))
        with self._lock:
            old = self._cache.get(key)
            self._cache[key] = (version, api)
        if old is not None:
            old[1].close()  # type: ignore[no-untyped-call]
        return MemberTarget(key, api)

    def close(self) -> None:
        with self._lock:
            for _, api in self._cache.values():
                api.close()  # type: ignore[no-untyped-call]
            self._cache.clear()
