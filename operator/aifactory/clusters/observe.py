"""What one cluster looks like to the operator: GPU nodes, the pods on them, our Deployments.

One `ClusterObserver` per cluster runs three informers (Nodes, non-terminal Pods, the member
Deployments the operator owns) and a cheap reachability probe. `snapshot()` returns a frozen
`ClusterView`; everything that derives capacity or readiness from it is a pure function here,
so the accounting rules are tested without a cluster:

* a node is *usable* when it is Ready, not cordoned and carries no NoSchedule/NoExecute taint
  (the operator's pods tolerate none): only usable nodes offer GPUs;
* GPUs in use are the requests of every non-terminal pod bound to a usable node, ours and
  anyone else's, counted per GPU model (node label `nvidia.com/gpu.product`), which is how
  kube-scheduler accounts for them;
* a pod of ours is identified by its labels and its module by `aifactory.dev/placed-on`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aifactory.labels import GPU_MODEL_LABEL, GPU_RESOURCE

from .errors import ClusterError
from .informer import Informer, InformerState
from .rest import ClusterClient

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "aifactory-operator"
OWNER_NAME_LABEL = "aifactory.dev/inference-deployment"
OWNER_NAMESPACE_LABEL = "aifactory.dev/inference-namespace"
PLACED_MODULE_LABEL = "aifactory.dev/placed-on"
OWNED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
#: Annotation on member Deployments: digest of the rendered objects, so unchanged ones are
#: not applied again (an apply per module per cycle is most of the API load at scale).
SPEC_HASH_ANNOTATION = "aifactory.dev/spec-hash"


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def quantity_gpus(value: Any) -> int:
    """An extended-resource quantity as an integer count (GPUs are whole devices)."""
    if value is None:
        return 0
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    gpus: int
    gpu_model: str
    ready: bool
    cordoned: bool
    tainted: bool

    @property
    def usable(self) -> bool:
        """Takes new pods of ours: Ready, schedulable, no NoSchedule/NoExecute taint."""
        return self.ready and not self.cordoned and not self.tainted


def node_info(raw: dict[str, Any]) -> NodeInfo | None:
    status = raw.get("status") or {}
    gpus = quantity_gpus((status.get("allocatable") or {}).get(GPU_RESOURCE))
    meta = raw.get("metadata") or {}
    labels = meta.get("labels") or {}
    spec = raw.get("spec") or {}
    taints = spec.get("taints") or []
    return NodeInfo(
        name=str(meta.get("name")),
        labels=dict(labels),
        gpus=gpus,
        gpu_model=str(labels.get(GPU_MODEL_LABEL, "unknown")),
        ready=any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ),
        cordoned=bool(spec.get("unschedulable")),
        tainted=any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints),
    )


@dataclass(frozen=True, slots=True, order=True)
class PodInfo:
    namespace: str
    name: str
    node: str
    gpus: int
    phase: str
    ready: bool
    created: datetime | None
    terminating: bool
    #: "ns/name" of the InferenceDeployment that owns it, "" for anyone else's pod.
    owner: str = ""
    module: str = ""
    #: Why the scheduler has not bound it (PodScheduled=False message), "" otherwise.
    unschedulable: str = ""


def _pod_gpus(spec: Mapping[str, Any]) -> int:
    total = 0
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        total += quantity_gpus((res.get("requests") or {}).get(GPU_RESOURCE)) or quantity_gpus(
            (res.get("limits") or {}).get(GPU_RESOURCE)
        )
    init = 0
    for c in spec.get("initContainers") or []:
        res = c.get("resources") or {}
        init = max(
            init,
            quantity_gpus((res.get("requests") or {}).get(GPU_RESOURCE))
            or quantity_gpus((res.get("limits") or {}).get(GPU_RESOURCE)),
        )
    return max(total, init)  # the scheduler's effective request


def pod_info(raw: dict[str, Any]) -> PodInfo | None:
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    labels = meta.get("labels") or {}
    gpus = _pod_gpus(spec)
    ours = labels.get(MANAGED_BY) == MANAGED_BY_VALUE and OWNER_NAME_LABEL in labels
    if gpus == 0 and not ours:
        return None  # not relevant to GPU accounting: keep the cache small
    conds = status.get("conditions") or []
    unsched = next(
        (
            str(c.get("message") or c.get("reason") or "")
            for c in conds
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        "",
    )
    owner = ""
    if ours:
        owner_ns = labels.get(OWNER_NAMESPACE_LABEL, meta.get("namespace"))
        owner = f"{owner_ns}/{labels[OWNER_NAME_LABEL]}"
    return PodInfo(
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        node=str(spec.get("nodeName") or ""),
        gpus=gpus,
        phase=str(status.get("phase") or "Pending"),
        ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds),
        created=_parse_time(meta.get("creationTimestamp")),
        terminating=bool(meta.get("deletionTimestamp")),
        owner=owner,
        module=str(labels.get(PLACED_MODULE_LABEL, "")) if ours else "",
        unschedulable=unsched,
    )


@dataclass(frozen=True, slots=True)
class WorkloadInfo:
    """One member Deployment the operator owns, as observed."""

    namespace: str
    name: str
    owner: str
    module: str
    replicas: int
    ready_replicas: int
    generation: int
    observed_generation: int
    #: ReplicaFailure / Progressing=False messages (quota, admission refusals in the member).
    failure: str = ""
    #: The operator's digest of what it last applied (annotation aifactory.dev/spec-hash).
    spec_hash: str = ""


def workload_info(raw: dict[str, Any]) -> WorkloadInfo | None:
    meta = raw.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGED_BY_VALUE or OWNER_NAME_LABEL not in labels:
        return None
    status = raw.get("status") or {}
    failure = next(
        (
            str(c.get("message") or c.get("reason") or "")
            for c in status.get("conditions") or []
            if (c.get("type") == "ReplicaFailure" and c.get("status") == "True")
            or (c.get("type") == "Progressing" and c.get("status") == "False")
        ),
        "",
    )
    owner_ns = labels.get(OWNER_NAMESPACE_LABEL, meta.get("namespace"))
    return WorkloadInfo(
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        owner=f"{owner_ns}/{labels[OWNER_NAME_LABEL]}",
        module=str(labels.get(PLACED_MODULE_LABEL, "")),
        replicas=int((raw.get("spec") or {}).get("replicas", 0) or 0),
        ready_replicas=int(status.get("readyReplicas", 0) or 0),
        generation=int(meta.get("generation", 0) or 0),
        observed_generation=int(status.get("observedGeneration", 0) or 0),
        failure=failure,
        spec_hash=str((meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION, "")),
    )


@dataclass(frozen=True, slots=True)
class ClusterView:
    """One cluster at one instant, as the informers last saw it."""

    key: str
    nodes: tuple[NodeInfo, ...] = ()
    pods: tuple[PodInfo, ...] = ()
    workloads: tuple[WorkloadInfo, ...] = ()
    #: All three caches hold a complete, current listing.
    synced: bool = False
    #: The cluster answered its last probe.
    reachable: bool = False
    #: When the cluster last answered (probe or informer).
    last_seen: datetime | None = None
    #: Why it is not synced/reachable, safe to show.
    error: str | None = None

    def nodes_of(self, selector: Mapping[str, str]) -> list[NodeInfo]:
        """The module's nodes: those matching its nodeSelector (all nodes of a member)."""
        return [n for n in self.nodes if all(n.labels.get(k) == v for k, v in selector.items())]


@dataclass(frozen=True, slots=True)
class PoolUse:
    """One GPU model on one module: what its usable nodes offer and what pods request."""

    model: str
    allocatable: int = 0
    #: GPUs requested by every non-terminal pod bound to a usable node of this pool.
    requested: int = 0
    nodes: int = 0
    ready_nodes: int = 0
    usable_nodes: int = 0


@dataclass(frozen=True, slots=True)
class ModuleObservation:
    """Capacity of one module from its cluster's caches."""

    pools: Mapping[str, PoolUse]
    #: GPUs bound to usable nodes per (deployment ref, GPU model), ours only.
    owned: Mapping[tuple[str, str], int]

    @property
    def usable_nodes(self) -> int:
        return sum(p.usable_nodes for p in self.pools.values())


def observe_module(view: ClusterView, selector: Mapping[str, str]) -> ModuleObservation:
    """Pools and usage of the module whose nodes match `selector` (pure)."""
    return observe_modules(view, {"": selector})[""]


def observe_modules(
    view: ClusterView, selectors: Mapping[str, Mapping[str, str]]
) -> dict[str, ModuleObservation]:
    """`observe_module` for many modules of one cluster, reading its pods once (pure).

    A cluster with hundreds of node-pool modules and thousands of pods costs one pass over the
    pods, not one per module.
    """
    pods_by_node: dict[str, list[PodInfo]] = defaultdict(list)
    for p in view.pods:
        if p.node and p.gpus > 0:
            pods_by_node[p.node].append(p)
    # one pass over the nodes too: by label, so a selector finds its nodes without a scan
    # (hundreds of node-pool modules times as many nodes was seconds per cycle)
    by_label: dict[tuple[str, str], list[NodeInfo]] = defaultdict(list)
    for n in view.nodes:
        for label in n.labels.items():
            by_label[label].append(n)
    out: dict[str, ModuleObservation] = {}
    for module, selector in selectors.items():
        if selector:
            first = next(iter(selector.items()))
            candidates: Iterable[NodeInfo] = by_label.get(first, ())
        else:
            candidates = view.nodes
        nodes = {
            n.name: n
            for n in candidates
            if n.gpus > 0 and all(n.labels.get(k) == v for k, v in selector.items())
        }
        alloc: dict[str, int] = defaultdict(int)
        count: dict[str, int] = defaultdict(int)
        ready: dict[str, int] = defaultdict(int)
        usable: dict[str, int] = defaultdict(int)
        requested: dict[str, int] = defaultdict(int)
        owned: dict[tuple[str, str], int] = defaultdict(int)
        for n in nodes.values():
            count[n.gpu_model] += 1
            ready[n.gpu_model] += int(n.ready)
            if not n.usable:
                continue
            usable[n.gpu_model] += 1
            alloc[n.gpu_model] += n.gpus
            for p in pods_by_node.get(n.name, ()):
                requested[n.gpu_model] += p.gpus
                if p.owner:
                    owned[(p.owner, n.gpu_model)] += p.gpus
        pools = {
            m: PoolUse(
                model=m,
                allocatable=alloc[m],
                requested=requested[m],
                nodes=count[m],
                ready_nodes=ready[m],
                usable_nodes=usable[m],
            )
            for m in sorted(count)
        }
        out[module] = ModuleObservation(pools=pools, owned=dict(owned))
    return out


@dataclass(frozen=True, slots=True)
class MemberReplicas:
    """One deployment's member objects on one module, as observed."""

    module: str
    workload: WorkloadInfo | None
    ready: int
    #: Creation times of pods not Ready yet, oldest first.
    waiting_since: tuple[datetime, ...]
    #: The scheduler's reason for an unschedulable pod ("" when none).
    unschedulable: str


def member_replicas(view: ClusterView) -> dict[str, dict[str, MemberReplicas]]:
    """Per owner (deployment ref), per module: its member Deployment and pods (pure).

    One pass over the cluster's pods and workloads, so a cycle pays it once per cluster.
    """
    pods_by: dict[tuple[str, str], list[PodInfo]] = defaultdict(list)
    for p in view.pods:
        if p.owner and not p.terminating:
            pods_by[(p.owner, p.module)].append(p)
    workloads = {(w.owner, w.module): w for w in view.workloads}
    out: dict[str, dict[str, MemberReplicas]] = {}
    for owner, module in sorted(set(pods_by) | set(workloads)):
        pods = pods_by.get((owner, module), [])
        waiting = sorted(p for p in pods if not p.ready)
        w = workloads.get((owner, module))
        out.setdefault(owner, {})[module] = MemberReplicas(
            module=module,
            workload=w,
            # status.readyReplicas lags a scale-down until the member's controller catches
            # up: never count more Ready replicas than the Deployment now asks for, or a
            # handover looks complete while the replicas it counted are being deleted
            ready=min(w.ready_replicas, w.replicas)
            if w is not None
            else sum(1 for p in pods if p.ready),
            waiting_since=tuple(sorted(p.created for p in waiting if p.created)),
            unschedulable=next((p.unschedulable for p in waiting if p.unschedulable), ""),
        )
    return out


class ClusterObserver:
    """Informers and a reachability probe for one cluster. Thread-safe."""

    def __init__(
        self,
        client: ClusterClient,
        *,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        """`on_change(kind, owner)` is called when something changed: kind is "nodes",
        "pods" or "workloads", owner the deployment ref concerned ("" for anyone else's)."""
        self.client = client
        self.key = client.key
        self._on_change = on_change

        def changed(kind: str) -> Callable[[str, Any, Any], None]:
            def hook(_key: str, old: Any, new: Any) -> None:
                if self._on_change is None:
                    return
                owners = {getattr(x, "owner", "") for x in (old, new) if x is not None}
                for owner in sorted(owners) or [""]:
                    self._on_change(kind, owner)

            return hook

        self.nodes: Informer[NodeInfo] = Informer(
            client, "/api/v1/nodes", node_info, on_change=changed("nodes"), name=f"{self.key} nodes"
        )
        self.pods: Informer[PodInfo] = Informer(
            client,
            "/api/v1/pods",
            pod_info,
            query=[("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")],
            on_change=changed("pods"),
            name=f"{self.key} pods",
        )
        self.workloads: Informer[WorkloadInfo] = Informer(
            client,
            "/apis/apps/v1/deployments",
            workload_info,
            query=[("labelSelector", OWNED_SELECTOR)],
            on_change=changed("workloads"),
            name=f"{self.key} deployments",
        )
        self._lock = threading.Lock()
        self._reachable = False
        self._last_seen: datetime | None = None
        self._probe_error: str | None = "not probed yet"

    def start(self) -> ClusterObserver:
        for inf in (self.nodes, self.pods, self.workloads):
            inf.start()
        return self

    def stop(self) -> None:
        for inf in (self.nodes, self.pods, self.workloads):
            inf.stop()

    def probe(self, timeout: tuple[float, float] = (3.0, 3.0)) -> bool:
        """One cheap request (/version): is the cluster answering now? Records the outcome."""
        try:
            self.client.request("GET", "/version", what="probe", timeout=timeout)
        except ClusterError as err:
            with self._lock:
                self._reachable = False
                self._probe_error = err.message
            return False
        with self._lock:
            self._reachable = True
            self._last_seen = datetime.now(UTC)
            self._probe_error = None
        return True

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(
            inf.wait_synced(max(0.0, deadline - time.monotonic()))
            for inf in (self.nodes, self.pods, self.workloads)
        )

    def states(self) -> Iterable[InformerState]:
        return (self.nodes.state, self.pods.state, self.workloads.state)

    def snapshot(self) -> ClusterView:
        states = list(self.states())
        synced = all(s.synced for s in states)
        with self._lock:
            reachable, last_seen, probe_error = self._reachable, self._last_seen, self._probe_error
        error = probe_error or next((s.error for s in states if s.error), None)
        return ClusterView(
            key=self.key,
            nodes=tuple(self.nodes.items().values()),
            pods=tuple(self.pods.items().values()),
            workloads=tuple(self.workloads.items().values()),
            synced=synced,
            reachable=reachable,
            last_seen=last_seen,
            error=None if (synced and reachable) else error,
        )

    def revision(self) -> tuple[int, int, int]:
        return tuple(s.revision for s in self.states())  # type: ignore[return-value]


__all__ = [
    "OWNED_SELECTOR",
    "ClusterObserver",
    "ClusterView",
    "MemberReplicas",
    "ModuleObservation",
    "NodeInfo",
    "PodInfo",
    "PoolUse",
    "WorkloadInfo",
    "member_replicas",
    "node_info",
    "observe_module",
    "observe_modules",
    "pod_info",
    "quantity_gpus",
    "workload_info",
]
