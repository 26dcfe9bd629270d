"""Clients and observers for the clusters behind modules, rebuilt when a kubeconfig changes.

A remote module's kubeconfig lives in a Secret on the hub; a node-pool module runs on the hub's
own nodes. Either way the rest of the operator gets a `MemberTarget`: the cluster's client, its
observer (informers) and the node selector that confines workloads to the module's nodes.
Modules that point at the same Secret share one client and one set of informers.

Kubeconfigs are credentials: nothing in this module logs them, and errors carry only the
Secret's coordinates and the kind of failure, never the content.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import yaml
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.kube_config import KubeConfigLoader

from aifactory.api import AIFactoryModule

from .errors import ClusterAccessError, ClusterError
from .observe import ClusterObserver
from .rest import ClusterClient, Limits

log = logging.getLogger(__name__)

HUB_CLUSTER = "hub"


@dataclass(frozen=True)
class MemberTarget:
    """Where a module's workloads go: a cluster client, its observer, the nodes within it."""

    #: "hub" for node-pool modules, else "secret:<ns>/<name>/<key>" (modules may share one)
    cluster_key: str
    client: ClusterClient
    observer: ClusterObserver
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
    # three watches, the executor's workers and the probe share one client per cluster
    cfg.connection_pool_maxsize = 16
    return cfg


def secret_key(module: AIFactoryModule) -> str | None:
    """The cluster key of a remote module ("secret:<ns>/<name>/<key>"), None for node pools."""
    ref = module.spec.cluster.kubeconfig_secret_ref
    if module.spec.cluster.node_selector or ref is None:
        return None
    return f"secret:{ref.namespace}/{ref.name}/{ref.key}"


class MemberClients:
    """One client and observer per cluster, shared by every module that points at it.

    `refresh(modules)` resolves every module's cluster (one Secret read per distinct cluster)
    and starts, replaces or stops observers; call it from one place on a period (the module
    monitor). `target(module)` then answers from memory, without I/O.
    """

    def __init__(
        self,
        hub: ClusterClient,
        *,
        limits: Limits | None = None,
        on_change: Callable[[str, str, str], None] | None = None,
        on_request: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        """`on_change(cluster_key, kind, owner)` is called by every observer on a change."""
        self._limits = limits or Limits()
        self._on_change = on_change
        self._on_request = on_request
        self._lock = threading.Lock()
        self.hub = hub
        self._hub_observer = self._observer(hub)
        self._hub_watched = False
        #: cluster key -> (secret uid/resourceVersion, client, observer)
        self._clusters: dict[str, tuple[str, ClusterClient, ClusterObserver]] = {}
        #: cluster key -> the access error that keeps it unusable
        self._errors: dict[str, ClusterAccessError] = {}

    def _observer(self, client: ClusterClient) -> ClusterObserver:
        hook = self._on_change
        key = client.key

        def changed(kind: str, owner: str) -> None:
            if hook is not None:
                hook(key, kind, owner)

        return ClusterObserver(client, on_change=changed)

    def start(self) -> None:
        """Nothing to start yet: `refresh` starts the hub's informers (nodes, pods, our
        Deployments) with the first node-pool module, so an operator whose modules are all
        remote never lists them (the chart's `rbac.nodePoolModules=false` does not allow it)."""

    def observers(self) -> dict[str, ClusterObserver]:
        """Every running observer by cluster key (the hub's once it watches)."""
        with self._lock:
            out = {k: obs for k, (_, _, obs) in self._clusters.items()}
            if self._hub_watched:
                out[HUB_CLUSTER] = self._hub_observer
        return out

    def access_error(self, module: AIFactoryModule) -> ClusterAccessError | None:
        key = secret_key(module)
        if key is None:
            return None
        with self._lock:
            return self._errors.get(key)

    def target(self, module: AIFactoryModule) -> MemberTarget:
        """The module's cluster as last resolved; raises ClusterAccessError with a reason."""
        cluster = module.spec.cluster
        if cluster.node_selector:
            return MemberTarget(
                HUB_CLUSTER, self.hub, self._hub_observer, dict(cluster.node_selector)
            )
        key = secret_key(module)
        if key is None:  # the CRD's CEL rule makes this unreachable for stored objects
            raise ClusterAccessError("InvalidClusterRef", "spec.cluster names no cluster")
        with self._lock:
            if key in self._errors:
                raise self._errors[key]
            entry = self._clusters.get(key)
        if entry is None:
            raise ClusterAccessError("ClusterNotResolved", "the module's cluster is not read yet")
        return MemberTarget(key, entry[1], entry[2])

    def refresh(self, modules: Iterable[AIFactoryModule]) -> None:
        """Resolve every remote module's cluster; start new observers, retire unused ones."""
        modules = list(modules)
        if not self._hub_watched and any(m.spec.cluster.node_selector for m in modules):
            self._hub_observer.start()  # kept running from then on (its GC needs the view)
            with self._lock:
                self._hub_watched = True
        wanted: dict[str, AIFactoryModule] = {}
        for m in modules:
            key = secret_key(m)
            if key is not None:
                wanted.setdefault(key, m)
        for key, module in sorted(wanted.items()):
            try:
                self._resolve(key, module)
                with self._lock:
                    self._errors.pop(key, None)
            except ClusterAccessError as err:
                with self._lock:
                    self._errors[key] = err
            except ClusterError as err:  # the hub itself failed: keep what we had
                log.warning("cannot read the kubeconfig Secret of %s: %s", key, err.reason)
        with self._lock:
            gone = [k for k in self._clusters if k not in wanted]
            retired = [self._clusters.pop(k) for k in gone]
            for k in list(self._errors):
                if k not in wanted:
                    del self._errors[k]
        for _, client, observer in retired:
            observer.stop()
            client.close()

    def _resolve(self, key: str, module: AIFactoryModule) -> None:
        ref = module.spec.cluster.kubeconfig_secret_ref
        assert ref is not None
        where = f"Secret {ref.namespace}/{ref.name} key {ref.key!r}"
        try:
            secret = self.hub.get(f"/api/v1/namespaces/{ref.namespace}/secrets/{ref.name}")
        except ClusterError as err:
            if err.status == 404:
                raise ClusterAccessError("SecretNotFound", f"{where} not found") from None
            if err.status == 403:
                raise ClusterAccessError(
                    "SecretForbidden", f"{where} cannot be read (forbidden)"
                ) from None
            if err.status is not None and 400 <= err.status < 500:
                raise ClusterAccessError(
                    "SecretUnreadable", f"{where} cannot be read (HTTP {err.status})"
                ) from None
            raise
        meta = secret.get("metadata") or {}
        version = f"{meta.get('uid')}/{meta.get('resourceVersion')}"
        with self._lock:
            cached = self._clusters.get(key)
        if cached and cached[0] == version:
            return
        encoded = (secret.get("data") or {}).get(ref.key)
        if not encoded:
            raise ClusterAccessError("KubeconfigKeyMissing", f"{where} is missing")
        try:
            raw = base64.b64decode(encoded).decode()
        except (ValueError, UnicodeDecodeError):
            raise ClusterAccessError(
                "InvalidKubeconfig", f"{where} is not valid base64 text"
            ) from None
        client = ClusterClient(
            ApiClient(_configuration_from_kubeconfig(raw, where)),
            key,
            self._limits,
            on_request=self._on_request,
        )
        observer = self._observer(client).start()
        with self._lock:
            old = self._clusters.get(key)
            self._clusters[key] = (version, client, observer)
        if old is not None:
            old[2].stop()
            old[1].close()

    def close(self) -> None:
        with self._lock:
            entries = list(self._clusters.values())
            self._clusters.clear()
        for _, client, observer in entries:
            observer.stop()
            client.close()
        self._hub_observer.stop()
