"""Everything that talks to member clusters: clients, informers, capacity, workload apply.

The rest of the operator never builds a cluster client itself; keeping it here means one place
decides timeouts, rate limits, credentials handling, what the operator owns in a member
cluster, and how every failure is reported (`ClusterError`).
"""

from .connect import HUB_CLUSTER, MemberClients, MemberTarget, secret_key
from .errors import ClusterAccessError, ClusterError, classify
from .informer import Informer, InformerState
from .observe import (
    ClusterObserver,
    ClusterView,
    MemberReplicas,
    ModuleObservation,
    NodeInfo,
    PodInfo,
    PoolUse,
    WorkloadInfo,
    member_replicas,
    observe_module,
    observe_modules,
)
from .rest import ClusterClient, Limits, TokenBucket
from .workload import (
    FIELD_MANAGER,
    apply,
    delete_named,
    ensure_namespace,
    member_object_name,
    owner_selector,
    render,
    scale,
)

__all__ = [
    "FIELD_MANAGER",
    "HUB_CLUSTER",
    "ClusterAccessError",
    "ClusterClient",
    "ClusterError",
    "ClusterObserver",
    "ClusterView",
    "Informer",
    "InformerState",
    "Limits",
    "MemberClients",
    "MemberReplicas",
    "MemberTarget",
    "ModuleObservation",
    "NodeInfo",
    "PodInfo",
    "PoolUse",
    "TokenBucket",
    "WorkloadInfo",
    "apply",
    "classify",
    "delete_named",
    "ensure_namespace",
    "member_object_name",
    "member_replicas",
    "observe_module",
    "observe_modules",
    "owner_selector",
    "render",
    "scale",
    "secret_key",
]
