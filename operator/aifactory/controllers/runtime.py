"""The operator's process state, typed, kept in kopf's memo (no module-level singletons).

Everything that outlives one placement cycle lives here: clients, caches, the work queue, and
what this process decided but may not have written yet. Fields touched by more than one thread
are guarded by `lock` (or are thread-safe types); the placement loop is the only writer of
the planning state (`decided`, `blocked`, `adopted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aifactory.api import InferenceDeploymentStatus
from aifactory.clusters import ClusterClient, MemberClients
from aifactory.placement import Decision
from aifactory.placement.rtt import RttTable
from aifactory.placement.state import WorkloadState
from aifactory.routers.status import RouterLive
from aifactory.settings import OperatorSettings
from aifactory.signals.carbon import SignalState
from aifactory.signals.smoothing import Smoothed

from .events import EventRecorder
from .executor import MemberExecutor
from .fleet import HubSnapshot, Invalid
from .leader import LeaderElector
from .planner import ModuleUse, PendingBlock
from .writer import HubWriter

GROUP = "aifactory.dev"
VERSION = "v1alpha1"
MODULES = "aifactorymodules"
DEPLOYMENTS = "inferencedeployments"
POLICIES = "sovereigntypolicies"
FINALIZER = f"{GROUP}/cleanup-member-objects"


@dataclass(frozen=True)
class DemandState:
    """Live demand of one deployment: readings in the stabilization window, the last good one,
    and the DemandSignal condition's facts. Immutable: the poller replaces it whole, so the
    planner thread never sees half an update."""

    history: tuple[tuple[datetime, Mapping[str, float]], ...] = ()
    effective: dict[str, float] | None = None
    read_at: datetime | None = None
    error_reason: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class FleetPlan:
    """One fleet-wide solve of the rebalancer."""

    made_at: datetime
    decisions: Mapping[str, Decision]
    started_from: Mapping[str, tuple[tuple[str, str, int], ...]]
    solver: str = ""
    cost: float = 0.0
    lower_bound: float | None = None


@dataclass(frozen=True)
class EngineMemo:
    """The engine's last decision for one deployment that kept its running placement whole,
    with what it was solved from: the fleet but its free GPUs, the workload as the engine saw
    it (demand, placement, pools), the pending-block clamps, and the RTT table in force."""

    key: tuple[str, str, str, str]
    rtt: Any
    decision: Decision
    #: slimmed: regions, eligible pools and binding only (cycle._slim)
    ws: WorkloadState
    #: the cells a bound Enforce policy forbids, as computed with the decision
    forbidden: Mapping[tuple[str, str], str]
    #: when it was solved (epoch seconds): reused for at most rebalanceInterval
    at: float = 0.0


@dataclass
class Runtime:
    settings: OperatorSettings
    hub: ClusterClient
    members: MemberClients
    executor: MemberExecutor
    recorder: EventRecorder
    writer: HubWriter
    elector: LeaderElector | None = None
    #: kopf indexes by name, read only on the event loop
    indexes: dict[str, Any] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    warm: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _dirty: set[str] = field(default_factory=set)
    _wake: asyncio.Event | None = None
    #: ref -> when its current spec was first seen (placement latency metric)
    spec_seen: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    #: ref -> (generation, deleting, finalizers, labels) last seen, to skip our own writes
    seen_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # --- planning state (placement loop only) ---------------------------------------------
    decided: dict[str, InferenceDeploymentStatus] = field(default_factory=dict)
    decided_uid: dict[str, str | None] = field(default_factory=dict)
    blocked: dict[str, dict[str, PendingBlock]] = field(default_factory=dict)
    adopted: dict[str, datetime] = field(default_factory=dict)
    next_plan: dict[str, float] = field(default_factory=dict)
    unsettled: set[str] = field(default_factory=set)
    #: ref -> the next unsettled re-plan delay (seconds), doubling while nothing happens
    backoff: dict[str, float] = field(default_factory=dict)
    fleet_plan: FleetPlan | None = None
    #: when each deployment's latency-only counterfactual was last solved (epoch seconds)
    blind_at: dict[str, float] = field(default_factory=dict)
    engine_memo: dict[str, EngineMemo] = field(default_factory=dict)
    #: ref -> member template key -> its digest (rendering is JSON work per plan otherwise)
    rendered_memo: dict[str, dict[tuple[Any, ...], str]] = field(default_factory=dict)
    #: ref -> the routing table last rendered into the routing ConfigMap
    routing_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: routing ConfigMap content last written per deployment
    routing_written: dict[str, str] = field(default_factory=dict)
    deleting_since: dict[str, float] = field(default_factory=dict)
    # --- signals -----------------------------------------------------------------------------
    demand: dict[str, DemandState] = field(default_factory=dict)
    smoothing: dict[str, dict[str, Smoothed]] = field(default_factory=dict)
    #: module -> its carbon feed's last good reading and last error (keep-last-good)
    signal_states: dict[str, SignalState] = field(default_factory=dict)
    #: measured RTTs in force (ConfigMap merged with Prometheus), and each source's last good
    rtt_table: RttTable | None = None
    rtt_sources: dict[str, RttTable] = field(default_factory=dict)
    #: WattTime login tokens between polls
    token_cache: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    module_uses: dict[str, ModuleUse] = field(default_factory=dict)
    module_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    invalid: dict[str, Invalid] = field(default_factory=dict)
    #: key -> last status/metadata body written successfully (skip no-op writes)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: decision records, compliance reports, reliability, measured SLOs (accountability.py)
    accountability: Any = None
    # --- InferenceRouters (routers.py) -----------------------------------------------------
    #: router ref -> live demand and shares (replaced whole by the poller)
    router_signals: dict[str, RouterLive] = field(default_factory=dict)
    #: router ref -> routing JSON the HTTP endpoint serves (replaced whole by the publisher)
    routing_views: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------- leadership
    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    @property
    def active(self) -> bool:
        """Plans and writes: leader, warm caches, not stopping."""
        return self.is_leader and self.warm.is_set() and not self.stopping.is_set()

    # ------------------------------------------------------------------------- work queue
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._wake = asyncio.Event()

    def mark(self, refs: Iterable[str]) -> None:
        """Queue deployments for the next cycle (thread-safe; wakes the loop). Something
        happened to them: their unsettled re-plans go back to the statusInterval cadence."""
        added = False
        with self.lock:
            for ref in refs:
                if ref and ref not in self._dirty:
                    self._dirty.add(ref)
                    self.backoff.pop(ref, None)
                    added = True
        if added and self.loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed while shutting down
                self.loop.call_soon_threadsafe(self._wake.set)

    def take_dirty(self) -> set[str]:
        with self.lock:
            out, self._dirty = self._dirty, set()
        return out

    def queue_depth(self) -> int:
        with self.lock:
            return len(self._dirty)

    async def wait_work(self, timeout: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def due(self, refs: Iterable[str], now: float) -> set[str]:
        """Deployments whose periodic re-plan is due (unsettled ones sooner)."""
        return {r for r in refs if self.next_plan.get(r, 0.0) <= now}

    def schedule(self, ref: str, settled: bool, recheck: float | None = None) -> None:
        """When to re-plan `ref` if no event does first.

        Settled: after resyncInterval. Unsettled (replicas starting, a step under way): after
        statusInterval, doubling while nothing but this timer replans it, up to
        resyncInterval, since pod, member and module events replan it anyway (re-planning
        every waiting deployment every few seconds is what made a slow member cost the whole
        fleet's placement speed, issue #15). `recheck` (seconds) brings it forward to when a
        pendingTimeout or block clock runs out.
        """
        s = self.settings
        with self.lock:  # mark() resets the backoff from other threads
            if settled:
                delay = s.resync_interval
                self.unsettled.discard(ref)
                self.backoff.pop(ref, None)
            else:
                delay = self.backoff.get(ref, s.status_interval)
                self.backoff[ref] = min(s.resync_interval, delay * 2)
                self.unsettled.add(ref)
        if recheck is not None:
            delay = min(delay, max(0.5, recheck + 0.1))
        self.next_plan[ref] = time.monotonic() + delay

    def forget(self, ref: str) -> None:
        for d in (
            self.decided,
            self.decided_uid,
            self.blocked,
            self.adopted,
            self.next_plan,
            self.backoff,
            self.demand,
            self.spec_seen,
            self.seen_keys,
            self.deleting_since,
            self.blind_at,
            self.routing_written,
            self.engine_memo,
            self.rendered_memo,
            self.routing_keys,
        ):
            d.pop(ref, None)  # type: ignore[attr-defined]
        self.unsettled.discard(ref)
        self.executor.forget(ref)

    # ------------------------------------------------------------------------- snapshot
    def snapshot(self) -> HubSnapshot:
        """The hub objects from kopf's indexes. Call on the event loop only (kopf changes
        the indexes there; reading them from another thread is what broke before)."""
        if self.loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            assert running is self.loop, "snapshot() must run on the operator's event loop"

        def values(name: str) -> list[Any]:
            index = self.indexes.get(name)
            if index is None:
                return []
            out = []
            for key in list(index):
                for value in index[key]:
                    out.append(value)
                    break
            return out

        from aifactory.api import (
            AIFactoryModule,
            InferenceDeployment,
            InferenceRouter,
            SovereigntyPolicy,
        )

        modules: list[AIFactoryModule] = []
        policies: list[SovereigntyPolicy] = []
        deployments: list[InferenceDeployment] = []
        invalid: list[Any] = []
        for v in values("module_index"):
            (modules if isinstance(v, AIFactoryModule) else invalid).append(v)
        for v in values("policy_index"):
            (policies if isinstance(v, SovereigntyPolicy) else invalid).append(v)
        for v in values("deployment_index"):
            (deployments if isinstance(v, InferenceDeployment) else invalid).append(v)
        routers = [v for v in values("router_index") if isinstance(v, InferenceRouter)]
        labels = {}
        index = self.indexes.get("namespace_index")
        if index is not None:
            for key in list(index):
                for value in index[key]:
                    labels[key] = value
                    break
        classes = {}
        index = self.indexes.get("priority_class_index")
        if index is not None:
            for key in list(index):
                for value in index[key]:
                    classes[key] = value
                    break
        return HubSnapshot(
            modules=tuple(sorted(modules, key=lambda m: m.name)),
            policies=tuple(sorted(policies, key=lambda p: p.name)),
            deployments=tuple(sorted(deployments, key=lambda d: d.ref)),
            namespace_labels=labels,
            invalid=tuple(i for i in invalid if isinstance(i, Invalid)),
            priority_classes=classes,
            routers=tuple(sorted(routers, key=lambda r: r.ref)),
        )


__all__ = [
    "DEPLOYMENTS",
    "FINALIZER",
    "GROUP",
    "MODULES",
    "POLICIES",
    "VERSION",
    "DemandState",
    "FleetPlan",
    "Runtime",
]


async def forever(name: str, rt: Runtime, body: Callable[[], Awaitable[float]]) -> None:
    """Run `body` until the operator stops; it returns the seconds to sleep. Never dies: a
    failure is logged and retried with backoff (1 s doubling to 30 s)."""
    backoff = 1.0
    while not rt.stopping.is_set():
        try:
            delay = await body()
            backoff = 1.0
        except asyncio.CancelledError:
            raise
        except Exception:
            logging.getLogger(__name__).exception("%s failed; retrying in %.0fs", name, backoff)
            delay = backoff
            backoff = min(30.0, backoff * 2)
        await asyncio.sleep(delay)
