"""Priorities, Kubernetes style: PriorityClass lookup and preemption in incremental mode.

`priority_of` resolves a deployment's `priorityClassName` the way Kubernetes' Priority
admission plugin resolves a Pod's (plugin/pkg/admission/priority/admission.go): a named class
gives its value and preemptionPolicy; no name gives the globalDefault class (the lowest value
if several claim it) or value 0 with PreemptLowerPriority; the built-in classes
system-cluster-critical and system-node-critical exist without being listed.

`preempt` is kube-scheduler's DefaultPreemption reduced to our model: when a deployment's
replicas do not fit, running replicas of lower-priority deployments on modules it may use are
displaced, lowest priority first and as few deployments as possible, then every displaced
replica that turns out not to be needed is given back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aifactory.placement.assignment import Outcome, solve_one
from aifactory.placement.cycle import prepare
from aifactory.placement.filters import gpu
from aifactory.placement.framework import FloatArray, IntArray
from aifactory.placement.model import PolicyView, PreemptionPolicy, WorkloadView
from aifactory.placement.result import Preemption
from aifactory.placement.state import FleetState, WorkloadState

DEFAULT_PREEMPTION_POLICY: PreemptionPolicy = "PreemptLowerPriority"
#: Kubernetes' built-in classes (pkg/apis/scheduling/types.go).
SYSTEM_CLASSES: Mapping[str, int] = {
    "system-cluster-critical": 2_000_000_000,
    "system-node-critical": 2_000_001_000,
}


class UnknownPriorityClassError(LookupError):
    """A deployment names a PriorityClass that does not exist (Kubernetes rejects such a Pod)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no PriorityClass with name {name} was found")
        self.name = name


@dataclass(frozen=True, slots=True)
class PriorityClassView:
    """One `scheduling.k8s.io/v1` PriorityClass: name, value, globalDefault, preemptionPolicy."""

    name: str
    value: int
    global_default: bool = False
    preemption_policy: PreemptionPolicy = DEFAULT_PREEMPTION_POLICY


def priority_of(
    class_name: str | None, classes: Iterable[PriorityClassView]
) -> tuple[int, PreemptionPolicy]:
    """(value, preemptionPolicy) for a deployment's `spec.priorityClassName`.

    Raises UnknownPriorityClassError for a name that is neither given nor built in.
    """
    by_name = {c.name: c for c in classes}
    if class_name:
        found = by_name.get(class_name)
        if found is not None:
            return found.value, found.preemption_policy
        if class_name in SYSTEM_CLASSES:
            return SYSTEM_CLASSES[class_name], DEFAULT_PREEMPTION_POLICY
        raise UnknownPriorityClassError(class_name)
    defaults = sorted(
        (c for c in by_name.values() if c.global_default), key=lambda c: (c.value, c.name)
    )
    if defaults:
        return defaults[0].value, defaults[0].preemption_policy
    return 0, DEFAULT_PREEMPTION_POLICY


@dataclass(slots=True)
class _Victim:
    """The running replicas of one lower-priority deployment on one module."""

    key: str
    priority: int
    module: int
    replicas: int
    gpus_per_replica: int
    #: Pools the victim's replicas hold, lowest board power first (the engine's own rule).
    pools: list[int]


def _victims(
    fleet: FleetState, ws: WorkloadState, running: Sequence[WorkloadView]
) -> list[_Victim]:
    """Running lower-priority replicas on modules this deployment may use (every hard rule
    but capacity holds for at least one of its regions)."""
    wl = ws.workload
    usable = ws.static_ok.any(axis=0) & fleet.schedulable & fleet.ready
    out: list[_Victim] = []
    for other in running:
        if other.key == wl.key or other.priority >= wl.priority:
            continue
        eligible = gpu.eligible_pools(fleet, other)
        for a in other.current:
            m = fleet.index.get(a.module)
            if m is None or a.replicas <= 0 or not usable[m]:
                continue
            pools = sorted(
                (p for p in fleet.module_pools[m] if eligible[p]),
                key=lambda p: (float(fleet.pool_power_w[p]), p),
            )
            out.append(
                _Victim(other.key, other.priority, m, a.replicas, other.gpus_per_replica, pools)
            )
    return out


def _release(
    fleet: FleetState,
    v: _Victim,
    replicas: int,
    pool_free: IntArray,
    power_free_w: FloatArray,
    sign: int = 1,
) -> int:
    """Free (sign 1) or take back (sign -1) up to `replicas` of a victim's replicas; returns how
    many. Freed GPUs never exceed what a pool has in use; taking back needs room."""
    g = max(1, v.gpus_per_replica)
    done = 0
    for p in v.pools:
        pue = float(fleet.pue[v.module])
        watts = g * float(fleet.pool_power_w[p]) * pue
        while done < replicas:
            if sign > 0:
                if fleet.pool_count[p] - pool_free[p] < g:
                    break
            elif pool_free[p] < g or power_free_w[v.module] < watts - 1e-6:
                break
            pool_free[p] += sign * g
            power_free_w[v.module] += sign * watts
            done += 1
    return done


def preempt(
    fleet: FleetState,
    ws: WorkloadState,
    outcome: Outcome,
    running: Sequence[WorkloadView],
    policies: Iterable[PolicyView],
    *,
    pool_free: IntArray | None = None,
    power_free_w: FloatArray | None = None,
) -> tuple[WorkloadState, Outcome, tuple[Preemption, ...]]:
    """Displace lower-priority replicas when `outcome` leaves replicas of `ws` unplaced.

    Victim deployments are taken lowest priority first and, within a priority, the one holding
    the most GPUs on usable modules first (fewest deployments touched); then, last taken first,
    every displaced replica that still fits next to the new placement is given back. Nothing
    changes when the deployment's policy is Never, when nothing is unplaced, or when displacing
    would not place more replicas. Returns the deployment's state on the capacity it was
    placed against, the outcome and the displaced replicas. `pool_free`/`power_free_w` are the
    free arrays `outcome` was solved against (default: the fleet's own).
    """
    wl = ws.workload
    placed = sum(outcome.alloc.values())
    if placed >= ws.total or wl.preemption_policy == "Never":
        return ws, outcome, ()
    victims = _victims(fleet, ws, running)
    if not victims:
        return ws, outcome, ()
    held: dict[str, int] = {}
    for v in victims:
        held[v.key] = held.get(v.key, 0) + v.replicas * v.gpus_per_replica
    prio = {v.key: v.priority for v in victims}
    order = sorted(held, key=lambda k: (prio[k], -held[k], k))
    pols = tuple(policies)
    pool_free = (fleet.pool_free if pool_free is None else pool_free).copy()
    power_free = (fleet.power_free_w if power_free_w is None else power_free_w).copy()
    released: list[tuple[_Victim, int]] = []
    best: tuple[WorkloadState, Outcome, IntArray, FloatArray] | None = None
    for key in order:
        for v in victims:
            if v.key == key:
                released.append((v, _release(fleet, v, v.replicas, pool_free, power_free)))
        pf, pw = pool_free.copy(), power_free.copy()
        trial_ws = prepare(fleet, wl, pols, pool_free=pf.copy(), power_free_w=pw.copy())
        trial = solve_one(fleet, trial_ws, pf, pw)
        if sum(trial.alloc.values()) > placed:
            best = (trial_ws, trial, pf, pw)
            if sum(trial.alloc.values()) >= ws.total:
                break
    if best is None:
        return ws, outcome, ()
    trial_ws, trial, pf, pw = best
    # Give back, last released first, whatever still fits next to the new placement.
    displaced: dict[tuple[str, int], int] = {}
    for v, freed in reversed(released):
        back = _release(fleet, v, freed, pf, pw, sign=-1)
        if freed - back > 0:
            displaced[(v.key, v.module)] = displaced.get((v.key, v.module), 0) + freed - back
    out = tuple(
        Preemption(key, fleet.names[m], k, prio[key])
        for (key, m), k in sorted(displaced.items(), key=lambda kv: (fleet.names[kv[0][1]], kv[0]))
    )
    return trial_ws, trial, out


__all__ = [
    "DEFAULT_PREEMPTION_POLICY",
    "SYSTEM_CLASSES",
    "PriorityClassView",
    "UnknownPriorityClassError",
    "preempt",
    "priority_of",
]
