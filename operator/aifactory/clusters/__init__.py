"""Everything that talks to member clusters: clients, capacity discovery, workload apply.

The rest of the operator never builds a member client itself; keeping it here means one place
decides timeouts, credentials handling and what the operator owns in a member cluster.
"""

from .connect import HUB_CLUSTER, ClusterAccessError, MemberClients, MemberTarget
from .discovery import PoolObservation, observe_capacity
from .workload import (
    FIELD_MANAGER,
    MemberWorkload,
    apply,
    apply_module,
    delete_module,
    delete_named,
    list_owned,
    member_object_name,
    owner_selector,
    render,
)

__all__ = [
    "FIELD_MANAGER",
    "HUB_CLUSTER",
    "ClusterAccessError",
    "MemberClients",
    "MemberTarget",
    "MemberWorkload",
    "PoolObservation",
    "apply",
    "apply_module",
    "delete_module",
    "delete_named",
    "list_owned",
    "member_object_name",
    "observe_capacity",
    "owner_selector",
    "render",
]
