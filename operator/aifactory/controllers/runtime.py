"""Process-wide state of the operator: settings, clients, and decisions not yet visible in status.

kopf writes a handler's status patch only after the handler returns, so two deployments placed
back to back would not see each other's GPUs in status yet. The engine therefore reads
reservations from here first: the latest placement this process decided per deployment.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import ApiClient

from aifactory.api import ModulePlacement
from aifactory.clusters import MemberClients
from aifactory.settings import OperatorSettings, load_settings

GROUP = "aifactory.dev"
VERSION = "v1alpha1"
MODULES = "aifactorymodules"
DEPLOYMENTS = "inferencedeployments"
POLICIES = "sovereigntypolicies"


@dataclass
class Runtime:
    settings: OperatorSettings
    hub: ApiClient
    members: MemberClients
    #: one placement decision at a time, so concurrent deployments never share free GPUs
    placement_lock: threading.Lock = field(default_factory=threading.Lock)
    #: "ns/name" -> placements this process decided last (ahead of what status shows)
    reservations: dict[str, list[ModulePlacement]] = field(default_factory=dict)
    #: the rebalancer's latest fleet-wide plan, and which plan each deployment last acted on
    plan: Any = None
    adopted: dict[str, Any] = field(default_factory=dict)
    #: last good live-demand reading per deployment
    demand: dict[str, Any] = field(default_factory=dict)
    _object_locks: defaultdict[str, threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock)
    )

    def object_lock(self, key: str) -> threading.Lock:
        """Serialises the change handlers and timers of one object."""
        with self.placement_lock:
            return self._object_locks[key]


_RUNTIME: Runtime | None = None
SETTINGS: OperatorSettings = load_settings()


def hub_client() -> ApiClient:
    """The hub's API client: in-cluster credentials when running in a Pod, else kubeconfig."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # type: ignore[no-untyped-call]
    return ApiClient()


def runtime() -> Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        hub = hub_client()
        _RUNTIME = Runtime(settings=SETTINGS, hub=hub, members=MemberClients(hub))
    return _RUNTIME
