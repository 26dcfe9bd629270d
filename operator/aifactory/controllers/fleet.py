"""The fleet as one placement cycle sees it, and the ledger of who holds which GPUs. Pure.

`HubSnapshot` is an immutable copy of the hub objects (taken on the event loop from kopf's
indexes, so no thread ever iterates a structure another thread changes). `build_fleet` turns
it, with the member clusters' views, into what the engine needs once per cycle: one
`FleetState`, how each module may be used, and a `Ledger` of free GPUs.

Capacity is what members can really schedule:

* a module offers the GPUs of its usable nodes (Ready, schedulable, untainted);
* in use is every GPU request of every non-terminal pod bound to those nodes, ours and
  anyone else's, per GPU model as the nodes report it;
* plus every decision of this operator whose pods are not bound yet (in flight), on the pools
  the engine chose for them; never a max where a sum is meant.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from aifactory.api import (
    AIFactoryModule,
    ConditionStatus,
    EffectiveDemand,
    InferenceDeployment,
    InferenceRouter,
    SovereigntyPolicy,
)
from aifactory.clusters import ClusterView, ModuleObservation, observe_modules
from aifactory.labels import DRAIN_ANNOTATION
from aifactory.placement import (
    Decision,
    FleetState,
    GpuPool,
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    place_against,
)
from aifactory.placement.assignment import fits
from aifactory.placement.from_api import module_view, policy_view
from aifactory.placement.priority import PriorityClassView
from aifactory.placement.rtt import RttTable
from aifactory.placement.state import WorkloadState

from .planner import ModuleUse


@dataclass(frozen=True, slots=True)
class Invalid:
    """A hub object the models reject (CRD/operator version skew, or a bypassed schema)."""

    kind: str
    key: str
    message: str
    generation: int | None = None
    uid: str | None = None
    deleting: bool = False


@dataclass(frozen=True)
class HubSnapshot:
    """Every hub object placement depends on, at one instant."""

    modules: tuple[AIFactoryModule, ...] = ()
    policies: tuple[SovereigntyPolicy, ...] = ()
    deployments: tuple[InferenceDeployment, ...] = ()
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    invalid: tuple[Invalid, ...] = ()
    #: PriorityClass name -> (value, preemptionPolicy, globalDefault)
    priority_classes: Mapping[str, tuple[int, str, bool]] = field(default_factory=dict)
    routers: tuple[InferenceRouter, ...] = ()
    #: deployment ref -> the demand its InferenceRouter derives (routers.with_tier_demand)
    tiers: Mapping[str, EffectiveDemand] = field(default_factory=dict)

    def module(self, name: str) -> AIFactoryModule | None:
        return self._modules.get(name)

    def by_module(self) -> dict[str, AIFactoryModule]:
        return dict(self._modules)

    def deployment(self, ref: str) -> InferenceDeployment | None:
        return self._deployments.get(ref)

    def priority_views(self) -> tuple[PriorityClassView, ...]:
        """The hub's PriorityClasses as the engine reads them."""
        return tuple(
            PriorityClassView(name, value, default, policy)  # type: ignore[arg-type]
            for name, (value, policy, default) in sorted(self.priority_classes.items())
        )

    # built once per snapshot: a cycle looks modules up per deployment and per action
    @functools.cached_property
    def _modules(self) -> dict[str, AIFactoryModule]:
        return {m.name: m for m in self.modules}

    @functools.cached_property
    def _deployments(self) -> dict[str, InferenceDeployment]:
        return {d.ref: d for d in self.deployments}


def without_priority_class(deployment: InferenceDeployment) -> InferenceDeployment:
    """The deployment as if it named no PriorityClass: how the engine sees one whose class
    does not exist (yet), to explain its placement while placement waits for the class."""
    spec = deployment.spec.model_copy(update={"priority_class_name": None})
    return deployment.model_copy(update={"spec": spec})


def draining(module: AIFactoryModule) -> bool:
    """`aifactoryctl drain` asked for every replica to leave this module."""
    return module.metadata.annotations.get(DRAIN_ANNOTATION) == "true"


def module_use(module: AIFactoryModule, now: datetime, toleration: float) -> ModuleUse:
    """Usable (replicas may stay), placeable (new ones may come), draining; and why not.

    A module never seen by a heartbeat is not usable: the operator has not proven it exists.
    NotReady for less than tolerationSeconds keeps what runs and takes nothing new.
    """
    cond = module.condition("Ready") if module.status else None
    drain = draining(module)
    if cond is None:
        return ModuleUse(module.name, False, False, drain, "no heartbeat yet")
    if cond.status is ConditionStatus.TRUE:
        if not module.spec.schedulable:
            return ModuleUse(module.name, True, False, drain, "cordoned")
        return ModuleUse(module.name, True, not drain, drain, "draining" if drain else "")
    since = cond.last_transition_time
    age = (now - since).total_seconds() if since else math.inf
    why = f"NotReady ({cond.reason}) for {age:.0f}s" if since else f"NotReady ({cond.reason})"
    if age < toleration:
        return ModuleUse(module.name, True, False, drain, why + " (within tolerationSeconds)")
    return ModuleUse(module.name, False, False, drain, why)


@dataclass(frozen=True)
class FleetContext:
    """One cycle's fleet: engine state, module uses, observations, the ledger's base."""

    fleet: FleetState
    uses: Mapping[str, ModuleUse]
    observations: Mapping[str, ModuleObservation]
    #: module -> cluster key ("hub" or "secret:...")
    cluster_of: Mapping[str, str]
    policies: tuple[PolicyView, ...]
    #: (module, model) -> flat pool index in `fleet`
    pool_index: Mapping[tuple[str, str], int]
    #: deployment ref -> (module, GPU model) -> GPUs its bound pods hold
    owned: Mapping[str, Mapping[tuple[str, str], int]]


def engine_module(
    module: AIFactoryModule, use: ModuleUse, observation: ModuleObservation | None
) -> ModuleView:
    """The engine's view: pools sized by what the usable nodes offer, nothing allocated
    (the ledger holds usage), readiness from the module's use this cycle."""
    base = module_view(module, assume_ready=False)
    if observation is not None and observation.pools:
        pools = tuple(
            GpuPool(
                p.model,
                observation.pools[p.model].allocatable if p.model in observation.pools else 0,
                p.memory_gib,
                p.power_w,
                0,
            )
            for p in base.pools
        )
    else:
        pools = tuple(dataclasses.replace(p, allocated=0) for p in base.pools)
    return dataclasses.replace(
        base,
        pools=pools,
        ready=use.usable,
        # a drain shows as "module draining", a cordon or toleration as "module cordoned"
        schedulable=use.placeable or use.draining,
        draining=use.draining,
    )


def build_fleet(
    snapshot: HubSnapshot,
    views: Mapping[str, ClusterView],
    cluster_of: Mapping[str, str],
    selectors: Mapping[str, Mapping[str, str]],
    now: datetime,
    *,
    toleration: float,
    settings: PlacementSettings,
    rtt: RttTable | None = None,
) -> FleetContext:
    """The cycle's fleet (pure). `cluster_of`/`selectors` say where each module's nodes are."""
    uses: dict[str, ModuleUse] = {}
    observations: dict[str, ModuleObservation] = {}
    views_list: list[ModuleView] = []
    by_cluster: dict[str, dict[str, Mapping[str, str]]] = {}
    for m in snapshot.modules:
        key = cluster_of.get(m.name)
        if key and key in views:
            by_cluster.setdefault(key, {})[m.name] = selectors.get(m.name, {})
    for key, wanted in by_cluster.items():
        observations.update(observe_modules(views[key], wanted))
    for m in snapshot.modules:
        use = module_use(m, now, toleration)
        uses[m.name] = use
        views_list.append(engine_module(m, use, observations.get(m.name)))
    fleet = FleetState(views_list, settings, rtt=rtt)
    pool_index: dict[tuple[str, str], int] = {}
    for p in range(fleet.n_pools):
        mi = int(fleet.pool_module[p])
        model = fleet.pool_model_name[p]
        pool_index[(fleet.names[mi], model)] = p
    owned: dict[str, dict[tuple[str, str], int]] = {}
    for module, obs in observations.items():
        for (owner, model), g in obs.owned.items():
            slot = owned.setdefault(owner, {})
            slot[(module, model)] = slot.get((module, model), 0) + g
    return FleetContext(
        fleet=fleet,
        uses=uses,
        observations=observations,
        cluster_of=dict(cluster_of),
        policies=tuple(policy_view(p) for p in snapshot.policies),
        pool_index=pool_index,
        owned=owned,
    )


#: (module, GPU model) -> GPUs
Holdings = dict[tuple[str, str], int]


def holdings(
    decided: Mapping[str, Mapping[str, int]], bound: Mapping[tuple[str, str], int]
) -> Holdings:
    """GPUs one deployment holds: bound pods as observed, plus decided GPUs not bound yet.

    `decided` is module -> GPU model -> GPUs (status.placements[].gpus or the plan's); `bound`
    is (module, GPU model) -> GPUs of its bound pods. Per module, GPUs in flight are the decided
    ones beyond what is bound, counted on the models the decision names (a pod bound on
    another pool than decided is not counted twice).
    """
    out: Holdings = {k: v for k, v in bound.items() if v > 0}
    for module, want in decided.items():
        have = {model: g for (m, model), g in bound.items() if m == module}
        inflight = max(0, sum(want.values()) - sum(have.values()))
        for model in sorted(want):
            if inflight <= 0:
                break
            k = min(inflight, max(0, want[model] - have.get(model, 0)))
            if k > 0:
                out[(module, model)] = out.get((module, model), 0) + k
                inflight -= k
    return out


class Ledger:
    """Free GPUs and power of the cycle, per pool: what every deployment's placement leaves.

    Built from observed requests on usable nodes (everyone's) plus every deployment's GPUs in
    flight; a deployment being placed releases its own holdings first, then reserves what its
    plan holds. Not thread-safe: one cycle, one thread.
    """

    def __init__(self, ctx: FleetContext, held: Mapping[str, Holdings]) -> None:
        fleet = ctx.fleet
        self.ctx = ctx
        self.fleet = fleet
        self._held: dict[str, Holdings] = {k: dict(v) for k, v in held.items()}
        used = np.zeros(fleet.n_pools, np.int64)
        for module, obs in ctx.observations.items():
            for model, pool in obs.pools.items():
                p = ctx.pool_index.get((module, model))
                if p is not None:
                    used[p] += pool.requested  # every bound pod, ours and anyone else's
        for ref, h in self._held.items():  # plus our decisions not bound yet
            bound = ctx.owned.get(ref, {})
            for key, g in h.items():
                p = ctx.pool_index.get(key)
                if p is not None:
                    used[p] += max(0, g - bound.get(key, 0))
        self.pool_free = fleet.pool_count - used
        self.power_free_w = (
            fleet.power_budget_w
            - np.bincount(fleet.pool_module, weights=used * fleet.pool_power_w, minlength=fleet.n)
            * fleet.pue
        )

    def _adjust(self, key: tuple[str, str], gpus: int) -> None:
        p = self.ctx.pool_index.get(key)
        if p is None or gpus == 0:
            return
        m = int(self.fleet.pool_module[p])
        self.pool_free[p] -= gpus
        self.power_free_w[m] -= gpus * float(self.fleet.pool_power_w[p]) * float(self.fleet.pue[m])

    def release(self, ref: str) -> None:
        """Give a deployment's GPUs back (bound and in flight), before it is placed again."""
        for key, g in self._held.pop(ref, {}).items():
            self._adjust(key, -g)

    def reserve(self, ref: str, h: Holdings) -> None:
        """Take what a deployment's new plan holds."""
        self.release(ref)
        self._held[ref] = dict(h)
        for key, g in h.items():
            self._adjust(key, g)

    def held(self, ref: str) -> Holdings:
        return dict(self._held.get(ref, {}))

    def place(
        self,
        workload: WorkloadView,
        policies: Sequence[PolicyView],
        *,
        clamp: Mapping[str, Mapping[str, int]] | None = None,
        explain_all: bool | None = None,
        running: Sequence[WorkloadView] = (),
    ) -> tuple[Decision, WorkloadState]:
        """The engine's decision for one deployment on what is free now (nothing reserved).

        `clamp`: module -> GPU model -> GPUs this deployment may use there at most (a module it
        may not grow on: pods Pending there for too long).
        """
        pf = self.pool_free.copy()
        pw = self.power_free_w.copy()
        self._clamp(pf, clamp)
        return place_against(
            self.fleet, workload, policies, pf, pw, explain_all=explain_all, running=running
        )

    def still_fits(
        self,
        ws: WorkloadState,
        decision: Decision,
        clamp: Mapping[str, Mapping[str, int]] | None = None,
    ) -> bool:
        """Whether `decision`'s allocation fits what is free now (nothing reserved); `ws` is
        the workload state it was solved with, on a fleet of the same modules and pools."""
        pf = self.pool_free.copy()
        pw = self.power_free_w.copy()
        self._clamp(pf, clamp)
        regions = {n: r for r, n in enumerate(ws.region_names)}
        alloc: dict[tuple[int, int], int] = {}
        for a in decision.assignments:
            m = self.fleet.index.get(a.module)
            if m is None:
                return False
            if ws.has_demand:
                for name, k in a.regions.items():
                    r = regions.get(name)
                    if r is None:
                        return False
                    alloc[(r, m)] = alloc.get((r, m), 0) + k
            else:
                alloc[(0, m)] = alloc.get((0, m), 0) + a.replicas
        return fits(self.fleet, ws, alloc, pf, pw)

    def _clamp(self, pf: np.ndarray, clamp: Mapping[str, Mapping[str, int]] | None) -> None:
        for module, models in (clamp or {}).items():
            mi = self.fleet.index.get(module)
            if mi is None:
                continue
            for p in self.fleet.module_pools[mi]:
                model = self.fleet.pool_model_name[p]
                pf[p] = min(int(pf[p]), int(models.get(model, 0)))
        np.maximum(pf, 0, out=pf)

    def take(self, ref: str, module: str, gpus: int) -> None:
        """Give back `gpus` GPUs a deployment holds on `module` (its replicas were preempted
        there), largest holding first."""
        held = self._held.get(ref, {})
        for key in sorted((k for k in held if k[0] == module), key=lambda k: -held[k]):
            if gpus <= 0:
                break
            k = min(gpus, held[key])
            held[key] -= k
            gpus -= k
            self._adjust(key, -k)


def decided_pools(deployment: InferenceDeployment) -> dict[str, dict[str, int]]:
    """status.placements as module -> GPU model -> GPUs (empty pools when unknown)."""
    out: dict[str, dict[str, int]] = {}
    if deployment.status is None:
        return out
    g = deployment.spec.resources.gpus_per_replica
    for p in deployment.status.placements:
        if p.replicas <= 0:
            continue
        if p.gpus:
            out[p.module] = dict(p.gpus)
        else:
            out[p.module] = {"": p.replicas * g}
    return out


def resolve_unknown_pools(
    decided: Mapping[str, Mapping[str, int]],
    deployment: InferenceDeployment,
    snapshot_modules: Mapping[str, AIFactoryModule],
) -> dict[str, dict[str, int]]:
    """Decided GPUs with an unknown pool ("") put on the first accepted pool of the module."""
    res = deployment.spec.resources
    out: dict[str, dict[str, int]] = {}
    for module, models in decided.items():
        fixed: dict[str, int] = {}
        for model, g in models.items():
            if model:
                fixed[model] = fixed.get(model, 0) + g
                continue
            m = snapshot_modules.get(module)
            pools = [
                p.model
                for p in (m.spec.capacity.gpus if m else [])
                if res.accepts(p.model, p.memory_gib)
            ]
            if pools:
                fixed[pools[0]] = fixed.get(pools[0], 0) + g
        out[module] = fixed
    return out


def observed_pools(
    bound: Mapping[tuple[str, str], int], gpus_per_replica: int
) -> dict[str, dict[str, int]]:
    """module -> GPU model -> replicas bound there (the engine accounts kept replicas so)."""
    out: dict[str, dict[str, int]] = {}
    g = max(1, gpus_per_replica)
    for (module, model), gpus in bound.items():
        if gpus >= g:
            out.setdefault(module, {})[model] = gpus // g
    return out


def observed_gpus(bound: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """module -> GPU model -> GPUs of one deployment's bound pods."""
    out: dict[str, dict[str, int]] = {}
    for (module, model), gpus in bound.items():
        out.setdefault(module, {})[model] = gpus
    return out
