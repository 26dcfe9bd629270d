"""Replay a period step by step through the operator's own engine and rebalancing rules. Pure.

What one simulated step does, per policy, is what the operator does over the same time
(`controllers/cycle.py`, `controllers/planner.py`, NOTES.md "How the operator decides"):

* **Slots.** A step (default 1 h) is cut into rebalance slots of `rebalance_interval` (300 s):
  the operator's rebalancer plans once per interval and a deployment takes at most one budgeted
  step per plan. New replicas are Ready at the next slot (model loading takes minutes), so
  make-before-break holds the replicas they replace for one slot, and the previous step is
  always Ready when the next one starts.
* **Keep or repair, every slot that can change anything** (slot 0 of each step, when demand or
  energy moved; any slot where a module's state changed; slots with a plan in progress): for
  each deployment in priority order, the engine places it against what the others hold (a
  ledger of free GPUs and power, as `controllers.fleet.Ledger`) with hysteresis 100%
  (`placement.cycle.prepare` + `placement.assignment.solve_one`, the body of `place_one`): the
  running placement stays unless a hard rule breaks or the replicas per region changed.
  Cells on modules unusable for longer than tolerationSeconds, or that a real Enforce policy
  forbids, leave at once (`planner._involuntary`); the rest goes through `planner.step`, THE
  rule for moving a placement towards a target (budget, surplus removed at once, additions at
  once, replicas with nowhere to go stay).
* **Rebalance** (not for `static`): after slot 0's repairs, `place_fleet` re-solves every
  deployment with the configured hysteresis; a deployment whose result says "replaced" gets it
  as a target, adopted as the operator adopts it (the plan started from its current cells, the
  repair changed nothing, nothing involuntary), one budgeted step per slot. The operator
  re-plans every interval; the simulator keeps the slot-0 target for the rest of the step and
  re-checks the hysteresis of the remaining move against the partly moved placement at every
  slot (inputs are constant within a step, so a re-solve could only differ there). The fleet
  solve is skipped, exactly, when no deployment could pass the hysteresis: when for every one
  the cost of its cheapest rule-abiding module per replica, capacity ignored, is already
  above (1 - hysteresis) x the cost of what runs.
* **Signals.** Carbon intensity and demand change at step boundaries (`series`, `demand`);
  module events at the slot they fall in (`events`).
* **Hard rules are checked after every cycle of every policy**, independently of how the
  placement was made: no replica in a (region, module) cell a bound Enforce policy forbids
  (`placement.compliance.forbidden_cells`, real policies only), none serving a region beyond its
  SLO, no pool or power budget oversubscribed (make-before-break holds included), none left on
  an unusable module. Each finding is counted; `strict` raises at the first.

Accounting (`SimulationResult`), per slot: gCO2e = sum over modules of GPUs held x board power
(W) x PUE x the true carbon intensity (gCO2e/kWh) x hours / 1000 (`placement.accounting`'s
formula); requests are routed per region in proportion to replicas (the routing table's rule),
a region's served rate capped at its replicas x throughputPerReplica.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.controllers import planner
from aifactory.controllers.planner import Cells, ModuleUse
from aifactory.placement import (
    FleetState,
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    place_fleet,
)
from aifactory.placement.assignment import (
    Alloc,
    Outcome,
    current_allocation,
    deployment_cost,
    fits,
    hysteresis,
    kept_allocation,
    repair,
    running_pools,
    solve_one,
    take_pools,
)
from aifactory.placement.compliance import forbidden_cells
from aifactory.placement.cycle import prepare, run_scores
from aifactory.placement.filters import energy as energy_filter
from aifactory.placement.filters import free_gpus, gpu, power, readiness, sovereignty
from aifactory.placement.filters import placement as placement_filter
from aifactory.placement.from_api import module_view, policy_view, workload_view
from aifactory.placement.optimize import place_prepared
from aifactory.placement.priority import PriorityClassView, UnknownPriorityClassError
from aifactory.placement.rtt import RttTable, with_rtt_profile
from aifactory.placement.state import WorkloadState
from aifactory.settings import OperatorSettings
from aifactory.simulation.events import ModuleStates
from aifactory.simulation.policies import (
    IN_COUNTRY_LABEL,
    IN_COUNTRY_POLICY,
    POLICY_NAMES,
    Policy,
    policy,
    split_in_country,
)
from aifactory.simulation.series import EnergyTimeline

FloatArray = np.ndarray
Progress = Callable[[int], None]

#: Findings recorded word for word per policy (counts are always complete).
MAX_FINDINGS = 20

#: Per-cycle cache entries of the engine (`FleetState.cache`, keyed by their owner's name)
#: that do not depend on carbon intensity: while no module changes state they are carried to
#: the next step's FleetState. Anything else (energy rules, carbon score, explanations, and any
#: entry a future plugin adds) is recomputed. tests/simulation checks the result is identical.
ENERGY_FREE_CACHE = frozenset(
    {
        "shape",
        "sovereignty",
        "residency",
        placement_filter.NAME,
        gpu.NAME,
        sovereignty.NAME,
        readiness.NAME,
        free_gpus.NAME,
        power.NAME,
    }
)


class SimulationError(RuntimeError):
    """A hard rule broke in strict mode, or the scenario cannot be simulated."""


# ------------------------------------------------------------------------------ inputs
@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """The operator's knobs as the simulation uses them (defaults: `OperatorSettings()`).

    Times in seconds. `workers` > 1 runs policies in that many processes (results do not
    depend on it).
    """

    step_s: float = 3600.0
    rebalance_interval_s: float = 300.0
    hysteresis: float = 0.10
    disruption_budget: int = 2
    toleration_s: float = 60.0
    energy_poll_s: float = 300.0
    signal_tolerance_s: float = 60.0
    signal_tolerance_readings: int = 2
    energy_signal_max_age_s: float = 10800.0
    demand_window_s: float = 300.0
    rtt_profile: str = "brief"
    solver_time_limit_s: float = 5.0
    policies: tuple[str, ...] = POLICY_NAMES
    workers: int = 1
    strict: bool = False

    @classmethod
    def from_operator(
        cls, settings: OperatorSettings | None = None, **overrides: Any
    ) -> SimulationConfig:
        """The operator's settings (defaults when None), overridden field by field."""
        s = settings or OperatorSettings()
        base = cls(
            rebalance_interval_s=s.rebalance_interval,
            hysteresis=s.hysteresis,
            disruption_budget=s.disruption_budget,
            toleration_s=s.toleration_seconds,
            energy_poll_s=s.energy_poll_interval,
            signal_tolerance_s=s.signal_tolerance_seconds,
            signal_tolerance_readings=s.signal_tolerance_readings,
            energy_signal_max_age_s=s.energy_signal_max_age,
            demand_window_s=s.demand_stabilization_window,
            rtt_profile=s.rtt_profile or "brief",
            solver_time_limit_s=s.solver_time_limit,
        )
        return dataclasses.replace(base, **overrides)

    @property
    def slots(self) -> int:
        """Rebalance slots per step (1 when the interval is a step or longer)."""
        return max(1, round(self.step_s / self.rebalance_interval_s))

    @property
    def plan_every(self) -> int:
        """Steps between fleet-wide plans (1 unless the interval is longer than a step)."""
        return max(1, round(self.rebalance_interval_s / self.step_s))

    def check(self) -> list[str]:
        problems = []
        if self.step_s <= 0 or self.rebalance_interval_s <= 0:
            problems.append("step and rebalance interval must be > 0 seconds")
        elif self.rebalance_interval_s < self.step_s:
            if abs(self.step_s / self.rebalance_interval_s - self.slots) > 1e-9:
                problems.append("the step must be a whole number of rebalance intervals")
        elif abs(self.rebalance_interval_s / self.step_s - self.plan_every) > 1e-9:
            problems.append("the rebalance interval must be a whole number of steps")
        if not 0 <= self.hysteresis < 1:
            problems.append("hysteresis must be within [0, 1)")
        if self.disruption_budget < 1:
            problems.append("the disruption budget must be >= 1")
        for name in self.policies:
            try:
                policy(name)
            except ValueError as exc:
                problems.append(str(exc))
        return problems

    def placement_settings(self) -> PlacementSettings:
        """The engine's settings as the operator builds them (`controllers.cycle`)."""
        base = PlacementSettings(
            hysteresis=self.hysteresis, milp_time_limit_s=self.solver_time_limit_s
        )
        return with_rtt_profile(base, self.rtt_profile)


@dataclass(frozen=True)
class Scenario:
    """The manifests of one fleet: modules sorted by name (the engine's order)."""

    modules: tuple[AIFactoryModule, ...]
    deployments: tuple[InferenceDeployment, ...]
    policies: tuple[SovereigntyPolicy, ...] = ()
    namespaces: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    priority_classes: tuple[PriorityClassView, ...] = ()
    #: tier deployment ref -> the InferenceRouter ref that feeds it (`inputs.scenario_of`)
    tier_of: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules", tuple(sorted(self.modules, key=lambda m: m.name)))
        object.__setattr__(
            self, "deployments", tuple(sorted(self.deployments, key=lambda d: d.ref))
        )

    @property
    def module_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modules)


@dataclass(frozen=True)
class Timeline:
    """Everything that changes over the period and does not depend on the policy.

    `step_times`: epoch seconds (UTC) of each step's start. `wanted[ref][s, r]`: replicas per
    region (region "" for a deployment without demand regions); `served[ref][s, r]`: requests/s
    served (absent without demand regions). `states`: module usability per slot
    ([steps * slots, modules]).
    """

    step_times: FloatArray
    step_s: float
    slots: int
    energy: EnergyTimeline
    states: ModuleStates
    regions: Mapping[str, tuple[str, ...]]
    wanted: Mapping[str, np.ndarray]
    served: Mapping[str, FloatArray]

    @property
    def steps(self) -> int:
        return len(self.step_times)


# ------------------------------------------------------------------------------ results
SERIES_FIELDS = (
    "gco2e",
    "kwh",
    "rttWeighted",
    "served",
    "demand",
    "withinSlo",
    "capacity",
    "replicaHours",
    "unplacedReplicaHours",
    "gpuHours",
    "moved",
    "rescheduled",
)


@dataclass
class PolicyResult:
    """One policy's outcome: per-step series (see `SERIES_FIELDS`), RTT distribution, rule
    findings and counters.

    Series units per step: gco2e (gCO2e), kwh, rttWeighted (ms x requests/s x h), served and
    demand and withinSlo and capacity (requests/s x h), replicaHours, unplacedReplicaHours,
    gpuHours, moved and rescheduled (replicas).
    """

    name: str
    description: str
    series: dict[str, FloatArray]
    #: RTT (ms, 0.1 ms bins) -> requests/s x h served at that RTT.
    rtt_histogram: dict[float, float]
    violations: dict[str, int]
    findings: list[str]
    counters: dict[str, int]
    seconds: float = 0.0
    gpus_total: int = 0

    def summary(self) -> dict[str, Any]:
        """The per-policy summary (JSON keys; units in the key or docstring of `aggregate`)."""
        return aggregate(self)


def weighted_percentile(hist: Mapping[float, float], q: float) -> float | None:
    """The q-th percentile (0..100) of a weighted distribution given as value -> weight."""
    total = sum(hist.values())
    if total <= 0:
        return None
    acc = 0.0
    for value in sorted(hist):
        acc += hist[value]
        if acc >= total * q / 100.0 - 1e-12:
            return float(value)
    return float(max(hist))


def aggregate(r: PolicyResult) -> dict[str, Any]:
    """kgCO2e, kWh, mean/p95 RTT (ms, over served requests), share of demand served within the
    SLO, replicas moved (voluntary) and rescheduled (forced), unplaced replica-hours, rule
    violations, GPU utilisation (served / capacity of the placed replicas of deployments with
    demand) and allocation (GPU-hours held / GPU-hours of the fleet)."""
    s = r.series
    served = float(s["served"].sum())
    demand = float(s["demand"].sum())
    capacity = float(s["capacity"].sum())
    hours = len(s["gco2e"]) and float(s["gpuHours"].sum())
    period_h = float(r.counters.get("periodSeconds", 0)) / 3600.0
    p95 = weighted_percentile(r.rtt_histogram, 95.0)
    return {
        "policy": r.name,
        "description": r.description,
        "kgCO2e": round(float(s["gco2e"].sum()) / 1000.0, 3),
        "kWh": round(float(s["kwh"].sum()), 3),
        "meanRttMs": round(float(s["rttWeighted"].sum()) / served, 3) if served else None,
        "p95RttMs": None if p95 is None else round(p95, 1),
        "withinSloShare": round(float(s["withinSlo"].sum()) / demand, 6) if demand else None,
        "servedShare": round(served / demand, 6) if demand else None,
        "replicasMoved": int(s["moved"].sum()),
        "replicasRescheduled": int(s["rescheduled"].sum()),
        "unplacedReplicaHours": round(float(s["unplacedReplicaHours"].sum()), 3),
        "replicaHours": round(float(s["replicaHours"].sum()), 3),
        "sovereigntyViolations": r.violations.get("sovereignty", 0),
        "sloViolations": r.violations.get("slo", 0),
        "capacityViolations": r.violations.get("capacity", 0),
        "gpuUtilisation": round(served / capacity, 6) if capacity else None,
        "gpuAllocation": round(hours / (r.gpus_total * period_h), 6)
        if r.gpus_total and period_h
        else None,
        "fleetSolves": r.counters.get("fleetSolves", 0),
        "repairs": r.counters.get("repairs", 0),
        "seconds": round(r.seconds, 3),
    }


# ------------------------------------------------------------------------------ helpers
def _cells_of(ws: WorkloadState, fleet: FleetState, alloc: Mapping[tuple[int, int], int]) -> Cells:
    out: Cells = {}
    for (r, m), k in alloc.items():
        if k > 0:
            key = (ws.region_names[r] if ws.has_demand else "", fleet.names[m])
            out[key] = out.get(key, 0) + k
    return out


def _alloc_of(ws: WorkloadState, fleet: FleetState, cells: Mapping[tuple[str, str], int]) -> Alloc:
    regions = {n: i for i, n in enumerate(ws.region_names)}
    out: Alloc = {}
    for (r, m), k in cells.items():
        if k > 0:
            key = (regions[r] if ws.has_demand else 0, fleet.index[m])
            out[key] = out.get(key, 0) + k
    return out


def _clean(cells: Mapping[tuple[str, str], int]) -> Cells:
    return {k: v for k, v in sorted(cells.items()) if v > 0}


def _same(target: Cells, cur: Cells, wanted: Mapping[str, int]) -> bool:
    """`planner.step` would return `cur` unchanged: the target is the running placement and no
    region runs more replicas than it wants (nothing to add, move or take away)."""
    if _clean(target) != _clean(cur):
        return False
    have: dict[str, int] = {}
    for (r, _), k in cur.items():
        have[r] = have.get(r, 0) + k
    return all(k <= wanted.get(r, 0) for r, k in have.items())


def _sized(template: WorkloadView, regions: Sequence[str], row: np.ndarray) -> WorkloadView:
    """The deployment with this step's replicas per region."""
    if not template.regions:
        return dataclasses.replace(template, replicas=int(row[0]))
    by = dict(zip(regions, (int(x) for x in row), strict=True))
    new = tuple(dataclasses.replace(r, replicas=by[r.name]) for r in template.regions)
    return dataclasses.replace(template, regions=new, replicas=sum(r.replicas for r in new))


Pools = dict[str, dict[str, int]]  # module -> GPU model -> GPUs


def _add(into: Pools, module: str, model: str, gpus: int) -> None:
    if gpus:
        slot = into.setdefault(module, {})
        slot[model] = slot.get(model, 0) + gpus
        if slot[model] == 0:
            del slot[model]


@dataclass
class _Unit:
    """One placement unit: a deployment, or one half of it under serve-in-country (`side`
    "home": cells in the region's own country; "abroad": the others; "all")."""

    key: str
    ref: str
    workload: WorkloadView
    regions: tuple[str, ...]
    forbidden: Mapping[tuple[str, str], str]
    side: str = "all"
    countries: Mapping[str, str | None] = field(default_factory=dict)
    split: frozenset[str] = frozenset()


@dataclass
class _Plan:
    target: Cells
    started_from: Cells
    #: GPUs per module and model the engine chose for the target
    pools: Pools = field(default_factory=dict)
    fresh: bool = True


@dataclass
class _Slot:
    """What a cycle needs about one slot, shared by every policy."""

    step: int
    slot: int
    time: float
    fleet: FleetState
    keep: FleetState
    uses: Mapping[str, ModuleUse]
    usable: np.ndarray
    placeable: np.ndarray
    epoch: int  # changes whenever the fleet is rebuilt


# ------------------------------------------------------------------------------ the world
class _World:
    """Per-process precomputation shared by the policies of one run."""

    def __init__(
        self, scenario: Scenario, timeline: Timeline, config: SimulationConfig, rtt: RttTable | None
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.config = config
        self.settings = config.placement_settings()
        self.keep_settings = dataclasses.replace(self.settings, hysteresis=1.0)
        self.rtt = rtt
        self.names = scenario.module_names
        views = [module_view(m, assume_ready=True) for m in scenario.modules]
        #: every GPU free: the ledger holds what the simulated deployments use
        self.base_views: tuple[ModuleView, ...] = tuple(
            dataclasses.replace(
                v, ready=True, pools=tuple(dataclasses.replace(p, allocated=0) for p in v.pools)
            )
            for v in views
        )
        self.policies: tuple[PolicyView, ...] = tuple(policy_view(p) for p in scenario.policies)
        self.with_in_country = (*self.policies, IN_COUNTRY_POLICY)
        try:
            self.templates = {
                d.ref: workload_view(
                    d,
                    scenario.namespaces.get(d.namespace),
                    priority_classes=scenario.priority_classes,
                )
                for d in scenario.deployments
            }
        except UnknownPriorityClassError as exc:
            raise SimulationError(f"spec.priorityClassName: {exc}") from exc
        # the floor, not capped by the declared demand's total
        self.templates = {
            ref: dataclasses.replace(
                wl, min_replicas=_floor(next(d for d in scenario.deployments if d.ref == ref))
            )
            for ref, wl in self.templates.items()
        }
        self.deployments = {d.ref: d for d in scenario.deployments}
        self.country = {m.name: m.spec.location.country for m in scenario.modules}
        fleet0 = FleetState(self.base_views, self.settings, rtt=rtt)
        self.pool_index: dict[tuple[str, str], int] = {}
        for p in range(fleet0.n_pools):
            mi = int(fleet0.pool_module[p])
            model = fleet0.pool_model_name[p]
            self.pool_index[(fleet0.names[mi], model)] = p
        self.pool_count = fleet0.pool_count.copy()
        self.pool_power = fleet0.pool_power_w.copy()
        self.pool_module = fleet0.pool_module.copy()
        self.pue = fleet0.pue.copy()
        #: Per pool: (module index, board watts, module PUE) as Python numbers for `_take`.
        self.pool_watts: list[tuple[int, float, float]] = [
            (int(mi), float(self.pool_power[p]), float(self.pue[mi]))
            for p, mi in enumerate(self.pool_module.tolist())
        ]
        self.budget_w = fleet0.power_budget_w.copy()
        self.gpus_total = int(fleet0.pool_count.sum())
        self.power_of = {m.name: {p.model: p.power_w for p in m.pools} for m in self.base_views}
        # static per deployment: forbidden cells (real Enforce policies), RTT rows, SLO
        self.forbidden: dict[str, dict[tuple[str, str], str]] = {}
        self.rtt_rows: dict[str, np.ndarray] = {}
        #: The same rows as Python lists (`measure` reads them one value at a time).
        self.rtt_lists: dict[str, list[list[float]]] = {}
        self.slo: dict[str, float | None] = {}
        self.throughput: dict[str, float] = {}
        for ref, wl in self.templates.items():
            ws0 = prepare(fleet0, wl, self.policies)
            self.forbidden[ref] = forbidden_cells(fleet0, ws0)
            if ws0.rtt is not None:
                self.rtt_rows[ref] = ws0.rtt
                self.rtt_lists[ref] = ws0.rtt.tolist()
            self.slo[ref] = wl.max_latency_ms
            d = self.deployments[ref]
            self.throughput[ref] = float(d.spec.throughput_per_replica or 0.0)
        self.order = sorted(self.templates, key=lambda r: (-self.templates[r].priority, r))
        self._fleet: FleetState | None = None
        self._keep: FleetState | None = None
        self._states = b""
        self._step = -1
        self._uses: dict[str, ModuleUse] = {}
        self.epoch = 0
        #: Changes whenever a module's usable/placeable state changes.
        self.states_key = 0
        self._sized: dict[tuple[str, bytes], WorkloadView] = {}
        #: Tests set this: no cache carried between steps (the reference path).
        self.exact = False
        usable_s, placeable_s = timeline.states.usable, timeline.states.placeable
        #: Per flat slot: no module changed state since the previous slot.
        self._quiet = np.zeros(len(usable_s), np.bool_)
        if len(usable_s) > 1:
            self._quiet[1:] = (usable_s[1:] == usable_s[:-1]).all(axis=1) & (
                placeable_s[1:] == placeable_s[:-1]
            ).all(axis=1)

    def slot(self, s: int, k: int) -> tuple[_Slot, bool]:
        """The shared fleet of slot k of step s, and whether module states changed since the
        previous slot (a new step always rebuilds the fleet: carbon moved)."""
        t = self.timeline
        flat = s * t.slots + k
        usable = t.states.usable[flat]
        placeable = t.states.placeable[flat]
        states = usable.tobytes() + placeable.tobytes()
        changed = states != self._states
        if changed or s != self._step:
            carbon = t.energy.effective[s]
            if not changed and self._fleet is not None and not self.exact:
                # only carbon moved: the same column arrays with this step's carbon, and the
                # cache entries that do not depend on it
                fleet = copy.copy(self._fleet)
                fleet.carbon = np.array(carbon, np.float64)
                fleet.cache = {
                    key: value
                    for key, value in self._fleet.cache.items()
                    if isinstance(key, tuple) and key and key[0] in ENERGY_FREE_CACHE
                }
            else:
                views = [
                    dataclasses.replace(
                        v,
                        carbon_intensity=float(carbon[i]),
                        ready=bool(usable[i]),
                        schedulable=bool(placeable[i]),
                    )
                    for i, v in enumerate(self.base_views)
                ]
                fleet = FleetState(views, self.settings, rtt=self.rtt)
            keep = copy.copy(fleet)  # same arrays and caches, settings with h = 100%
            keep.settings = self.keep_settings
            self._fleet, self._keep = fleet, keep
            self._step = s
            self.epoch += 1
        if changed:
            self._states = states
            self.states_key += 1
            self._uses = {
                n: ModuleUse(
                    n,
                    bool(usable[i]),
                    bool(placeable[i]),
                    False,
                    "" if placeable[i] else ("not ready" if not usable[i] else "cordoned"),
                )
                for i, n in enumerate(self.names)
            }
        assert self._fleet is not None and self._keep is not None
        return (
            _Slot(
                s,
                k,
                float(t.step_times[s] + k * t.step_s / t.slots),
                self._fleet,
                self._keep,
                self._uses,
                usable,
                placeable,
                self.epoch,
            ),
            changed,
        )

    def quiet(self, s: int, k: int) -> bool:
        """No module changes state at slot k of step s (k >= 1)."""
        return bool(self._quiet[s * self.timeline.slots + k])

    def workload(self, ref: str, s: int) -> WorkloadView:
        """The deployment with step s's replicas per region (one object per distinct row)."""
        row = self.timeline.wanted[ref][s]
        key = (ref, row.tobytes())
        hit = self._sized.get(key)
        if hit is None:
            hit = self._sized[key] = _sized(self.templates[ref], self.timeline.regions[ref], row)
        return hit


def _energy_verdict(fleet: FleetState, ws: WorkloadState) -> bytes:
    """The energy rules' verdict per module, through the fleet's filter cache (the key
    `prepare` uses, so units and policies with the same rules share one evaluation a step)."""
    key = (energy_filter.NAME, energy_filter.cache_key(ws))
    hit = fleet.cache.get(key)
    if hit is None:
        hit = fleet.cache[key] = energy_filter.filter(fleet, ws)
    return bytes(hit.ok.tobytes())  # type: ignore[attr-defined]


def _keep_or_repair(
    fleet: FleetState, ws: WorkloadState, pool_free: np.ndarray, power_free: np.ndarray
) -> Outcome:
    """`solve_one` for a deployment with a running placement under hysteresis 100% (the
    operator's keep-or-repair), without its fresh solve, which that hysteresis never picks:
    the running placement whole when it still holds and fits, else kept cells plus missing
    replicas placed on what is free (`kept_allocation`, `fits`, `repair`, `take_pools`, in
    solve_one's order). tests/simulation checks it against solve_one through `exact`."""
    kept, notes = kept_allocation(fleet, ws)
    whole = not notes and fits(fleet, ws, kept, pool_free, power_free)
    baseline = kept if whole else repair(fleet, ws, kept, pool_free, power_free)
    alloc, parts = take_pools(
        fleet, ws, baseline, pool_free.copy(), power_free.copy(), running_pools(fleet, ws)
    )
    return Outcome(alloc, parts, whole)


def _wait_for_room(
    cells: Cells, moves: Sequence[tuple[str, str, str, int]], short: Mapping[str, int]
) -> tuple[Cells, list[tuple[str, str, str, int]], int]:
    """Undo the moves into modules without room (latest first): those replicas stay where
    they run. Returns the cells, the moves left and how many replicas wait."""
    out = dict(cells)
    left = [(r, a, b, n) for r, a, b, n in moves]
    waited = 0
    for module, need in sorted(short.items()):
        for i in range(len(left) - 1, -1, -1):
            r, src, dst, n = left[i]
            if need <= 0:
                break
            if dst != module or n <= 0:
                continue
            k = min(need, n)
            out[(r, dst)] -= k
            out[(r, src)] = out.get((r, src), 0) + k
            left[i] = (r, src, dst, n - k)
            need -= k
            waited += k
    kept = [mv for mv in left if mv[3] > 0]
    return _clean(out), kept, waited


def _bound(ws: WorkloadState, settings: PlacementSettings) -> float:
    """A lower bound on the brief's cost of one deployment (see `_Run._may_replace`)."""
    total = 0.0
    cap = ws.capacity
    has_cap = cap > 0
    cap_l = cap.tolist()
    unplaced = settings.unplaced_cost
    for r, need in enumerate(ws.demand.tolist()):
        if need <= 0:
            continue
        ok = np.flatnonzero(ws.static_ok[r] & has_cap)
        cost = ws.cost[r, ok]
        cost_l, ok_l = cost.tolist(), ok.tolist()
        for j in np.argsort(cost, kind="stable").tolist():
            take = min(need, cap_l[ok_l[j]])
            total += take * min(cost_l[j], unplaced)
            need -= take
            if need <= 0:
                break
        total += need * unplaced
    # distinct modules short of minModules that no placement can avoid
    usable = int(((ws.static_ok & has_cap[None, :])[ws.demand > 0]).any(axis=0).sum())
    return total + settings.spread_cost * max(0, ws.spread - usable)


def _floor(d: InferenceDeployment) -> int:
    r = d.spec.replicas
    if r.fixed is not None:
        return r.fixed
    return 1 if r.min is None else r.min


# ------------------------------------------------------------------------------ one policy
class _Run:
    """One policy's state and its operator cycle."""

    def __init__(self, world: _World, pol: Policy) -> None:
        self.w = world
        self.policy = pol
        self.pols = world.with_in_country if pol.in_country else world.policies
        self.cells: dict[str, Cells] = {ref: {} for ref in world.templates}
        self.pools: dict[str, Pools] = {ref: {} for ref in world.templates}
        self.handover: dict[str, Pools] = {ref: {} for ref in world.templates}
        self.plan: dict[str, _Plan] = {}
        self.units: list[_Unit] = []
        self._ws: dict[str, tuple[tuple[Any, ...], WorkloadState]] = {}
        self._ws_fresh: dict[str, WorkloadState] = {}
        self._home_ws: dict[str, tuple[tuple[Any, ...], WorkloadState]] = {}
        self._ws_epoch = -1
        self._units_key: tuple[int, int] | None = None
        n = world.timeline.steps
        self.series = {f: np.zeros(n) for f in SERIES_FIELDS}
        self.hist: dict[float, float] = {}
        self.violations = {"sovereignty": 0, "slo": 0, "capacity": 0}
        self.findings: list[str] = []
        self.counters = {
            "fleetSolves": 0,
            "fleetSolvesSkipped": 0,
            "repairs": 0,
            "movesWaitingForRoom": 0,
        }
        self.last: dict[str, Any] = {}
        self.seconds = 0.0

    # -------------------------------------------------------------- units and their states
    def _unit_ws(self, slot: _Slot, unit: _Unit) -> WorkloadState:
        """The unit's prepared state on this slot's fleet, with free capacity as if alone.

        `prepare` runs again only when something it filters on changed: module states, the
        regions or binding of the unit, or the verdict of the energy rules on this step's
        carbon. Otherwise the last state gets this step's replicas per region and is re-scored
        with the engine's `run_scores` (the carbon term moved). `exact` always prepares.
        """
        if self._ws_epoch != slot.epoch:
            self._ws_fresh = {}
            self._ws_epoch = slot.epoch
        ws = self._ws_fresh.get(unit.key)
        if ws is not None and ws.workload is unit.workload:
            return ws
        regions = tuple(r.name for r in unit.workload.regions)
        old = self._ws.get(unit.key)
        if old is not None and not self.w.exact:
            signature, base = old
            verdict = _energy_verdict(slot.fleet, base)
            if signature == (unit.side, regions, self.w.states_key, verdict):
                demand = np.array(
                    [r.replicas for r in unit.workload.regions] or [unit.workload.replicas],
                    np.int64,
                )
                ws = base.replace(workload=unit.workload, demand=demand)
                run_scores(slot.fleet, ws)
                self._ws_fresh[unit.key] = ws
                return ws
        ws = prepare(slot.fleet, unit.workload, self.pols)
        verdict = _energy_verdict(slot.fleet, ws)
        self._ws[unit.key] = ((unit.side, regions, self.w.states_key, verdict), ws)
        self._ws_fresh[unit.key] = ws
        return ws

    def _make_units(self, slot: _Slot) -> None:
        if self._units_key == (slot.step, slot.epoch):
            return
        self._units_key = (slot.step, slot.epoch)
        w = self.w
        units = []
        for ref in w.order:
            base = self.policy.objective(w.workload(ref, slot.step))
            if self.policy.in_country and base.regions:
                halves = split_in_country(base, self._home(slot, base))
            else:
                halves = (base,)
            both = (
                frozenset(r.name for r in halves[0].regions)
                & frozenset(r.name for r in halves[1].regions)
                if len(halves) == 2
                else frozenset()
            )
            for i, half in enumerate(halves):
                names = tuple(r.name for r in half.regions) or ("",)
                forbidden = {k: v for k, v in w.forbidden[ref].items() if k[0] in names}
                side = "home" if IN_COUNTRY_LABEL in half.labels else "abroad" if i else "all"
                countries = {r.name: r.country for r in base.regions}
                units.append(_Unit(half.key, ref, half, names, forbidden, side, countries, both))
        units.sort(key=lambda u: (-u.workload.priority, u.key))
        self.units = units

    def _home(self, slot: _Slot, wl: WorkloadView) -> list[int]:
        """Per region: replicas the modules of its own country can hold for this deployment
        (placeable, passing its rules; capacity as if it were alone), at most those wanted."""
        fleet = slot.fleet
        # What is read here (hard rules, capacity as if alone) changes with the module states
        # and the energy verdict only, as in `_unit_ws`: prepare again only then
        names = tuple(r.name for r in wl.regions)
        hit = self._home_ws.get(wl.key)
        ws = None
        if hit is not None and not self.w.exact:
            signature, base = hit
            if signature == (names, self.w.states_key, _energy_verdict(fleet, base)):
                ws = base
        if ws is None:
            ws = prepare(fleet, wl, self.w.policies)
            self._home_ws[wl.key] = ((names, self.w.states_key, _energy_verdict(fleet, ws)), ws)
        out = []
        for r, region in enumerate(wl.regions):
            cid = fleet.countries.get(region.country or "")
            if cid is None:
                out.append(0)
                continue
            ok = ws.static_ok[r] & (fleet.country == cid) & slot.placeable
            out.append(min(region.replicas, int(ws.capacity[ok].sum())))
        return out

    def _owns(self, unit: _Unit, region: str, module: str) -> bool:
        if region not in unit.regions:
            return False
        if unit.side == "all" or region not in unit.split:
            return True
        home = self.w.country[module] == unit.countries.get(region)
        return home if unit.side == "home" else not home

    def _unit_cells(self, unit: _Unit) -> Cells:
        return {k: v for k, v in self.cells[unit.ref].items() if v > 0 and self._owns(unit, *k)}

    def _unit_pools(self, unit: _Unit, cells: Cells) -> Pools:
        """The unit's share of its deployment's GPUs per module (all of them unless the other
        half of the deployment runs on the same module too)."""
        dep = self.pools[unit.ref]
        total = planner.per_module(self.cells[unit.ref])
        mine = planner.per_module(cells)
        out: Pools = {}
        for m, n in mine.items():
            have = dep.get(m, {})
            if total.get(m, 0) == n:
                out[m] = dict(have)
                continue
            g = unit.workload.gpus_per_replica
            need = n * g
            for model in sorted(have):
                take = min(need, have[model])
                if take:
                    out.setdefault(m, {})[model] = take
                    need -= take
        return out

    # -------------------------------------------------------------- the ledger
    def _ledger(self) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        used = np.zeros(len(w.pool_count), np.int64)
        for holdings in (*self.pools.values(), *self.handover.values()):
            for m, models in holdings.items():
                for model, g in models.items():
                    used[w.pool_index[(m, model)]] += g
        pool_free = w.pool_count - used
        watts = np.bincount(w.pool_module, weights=used * w.pool_power, minlength=len(w.names))
        power_free = w.budget_w - watts * w.pue
        return pool_free, power_free

    def _take(self, pools: Pools, sign: int, pool_free: np.ndarray, power_free: np.ndarray) -> None:
        w = self.w
        for m, models in pools.items():
            for model, g in models.items():
                p = w.pool_index[(m, model)]
                pool_free[p] -= sign * g
                mi, power, pue = w.pool_watts[p]
                power_free[mi] -= sign * g * power * pue

    def _fit(
        self,
        slot: _Slot,
        ws: WorkloadState,
        cells: Cells,
        prefer: Pools,
        target: Cells,
        chosen: Pools,
        pool_free: np.ndarray,
        power_free: np.ndarray,
        *,
        force: bool = False,
    ) -> tuple[Pools, dict[str, int]]:
        """GPUs for a unit's next cells, and per module the replicas that do not fit.

        Pools are taken as `take_pools` takes them (`fleet.fit_pools` on what is free now):
        first the pools the engine chose when the module holds exactly the target's replicas
        (`chosen`), else the pools running replicas hold (`prefer`, and the engine's), then
        the lowest board power. With `force`, what does not fit is put on the first accepted
        pool anyway, for the capacity check to report."""
        fleet = slot.fleet
        g = ws.workload.gpus_per_replica
        want = planner.per_module(target)
        out: Pools = {}
        short: dict[str, int] = {}
        for m, n in sorted(planner.per_module(cells).items()):
            mi = fleet.index[m]
            engine = chosen.get(m, {})
            if want.get(m) == n and sum(engine.values()) == n * g:
                pref = {model: gpus // g for model, gpus in engine.items()}
            else:
                models = set(prefer.get(m, {})) | set(engine)
                pref = {
                    model: max(prefer.get(m, {}).get(model, 0), engine.get(model, 0)) // g
                    for model in models
                }
            parts = fleet.fit_pools(mi, ws.eligible_pool, g, pool_free, power_free, n, pref)
            got = 0
            for p, k in parts:
                model = fleet.pool_model_name[p]
                _add(out, m, model, k * g)
                got += k
            if got < n and force:
                pools = [p for p in fleet.module_pools[mi] if ws.eligible_pool[p]] or list(
                    fleet.module_pools[mi]
                )
                if pools:
                    model = fleet.pool_model_name[pools[0]]
                    _add(out, m, model, (n - got) * g)
            elif got < n:
                short[m] = n - got
        return out, short

    # -------------------------------------------------------------- one cycle
    def cycle(self, slot: _Slot, *, initial: bool = False) -> dict[str, int]:
        """Keep-or-repair, adopt the plan where the operator would, step; returns counts."""
        w = self.w
        self._make_units(slot)
        for ref in self.handover:
            self.handover[ref] = {}  # the replacements are Ready now: the old ones go
        pool_free, power_free = self._ledger()
        new_pools: dict[str, Pools] = {ref: {} for ref in self.pools}
        new_cells: dict[str, Cells] = {ref: {} for ref in self.cells}
        moved = rescheduled = 0
        for unit in self.units:
            cur = self._unit_cells(unit)
            prev = self._unit_pools(unit, cur)
            self._take(prev, -1, pool_free, power_free)
            ws0 = self._unit_ws(slot, unit)
            wanted = {r.name: r.replicas for r in unit.workload.regions} or {
                "": unit.workload.replicas
            }
            involuntary = planner._involuntary(cur, slot.uses, unit.forbidden)
            chosen: Pools = prev
            if initial:
                first = self.plan.get(unit.key)
                target = first.target if first is not None else {}
                chosen = first.pools if first is not None else {}
            elif not w.exact and self._keeps(ws0, slot, cur, wanted):
                target = cur
            else:
                self.counters["repairs"] += 1
                wl = unit.workload.with_current(
                    planner.as_current(cur, self._as_replicas(prev, unit))
                )
                if cur and not w.exact:
                    out = _keep_or_repair(
                        slot.keep, ws0.replace(workload=wl), pool_free, power_free
                    )
                else:
                    ws = prepare(
                        slot.keep, wl, self.pols, pool_free=pool_free, power_free_w=power_free
                    )
                    out = solve_one(slot.keep, ws, pool_free.copy(), power_free.copy())
                target = _cells_of(ws0, slot.keep, out.alloc)
                chosen = {}
                for mi, parts in out.parts.items():
                    for p, k in parts:
                        model = slot.keep.pool_model_name[p]
                        _add(chosen, slot.keep.names[mi], model, k * unit.workload.gpus_per_replica)
            plan = None if initial else self.plan.pop(unit.key, None)
            if (
                plan is not None
                and not involuntary
                and _clean(target) == _clean(cur)
                and _clean(plan.started_from) == _clean(cur)
                and self._still_worth_it(slot, ws0, unit, plan, cur)
            ):
                target = plan.target
                chosen = plan.pools
            else:
                plan = None  # stale for the operator too: its cells or its inputs changed
            if not involuntary and not w.exact and (target is cur or _same(target, cur, wanted)):
                res = planner.StepResult(cells=dict(cur))  # what step() returns for no change
            else:
                res = planner.step(
                    cur,
                    target,
                    wanted,
                    involuntary,
                    budget=w.config.disruption_budget,
                    moves_allowed=True,
                )
            nxt = _clean(res.cells)
            moves = list(res.moves)
            short: dict[str, int]
            if nxt == _clean(cur) and not w.exact:
                pools, short = prev, {}  # running replicas stay on their pools
            else:
                pools, short = self._fit(
                    slot, ws0, nxt, prev, target, chosen, pool_free, power_free
                )
            while short and any(mv[2] in short for mv in moves):
                # a move into a module that is still full waits (its pods would be Pending;
                # make-before-break keeps the replica serving where it is); a replica that
                # stays may in turn leave no room for another move into its module
                nxt, moves, waited = _wait_for_room(nxt, moves, short)
                self.counters["movesWaitingForRoom"] += waited
                pools, short = self._fit(
                    slot, ws0, nxt, prev, target, chosen, pool_free, power_free
                )
            if short:
                pools, _ = self._fit(
                    slot, ws0, nxt, prev, target, chosen, pool_free, power_free, force=True
                )
            self._take(pools, 1, pool_free, power_free)
            moving = sum(n for *_, n in moves)
            if moving:
                held = self._handover(unit, prev, pools, moves)
                self._take(held, 1, pool_free, power_free)
                for m, models in held.items():
                    for model, g in models.items():
                        _add(self.handover[unit.ref], m, model, g)
            moved += moving
            rescheduled += sum(
                n for _, _, n, why in res.removed if why.startswith(("module ", "an Enforce"))
            )
            if plan is not None and res.moves and _clean(nxt) != _clean(plan.target):
                # the operator re-plans from here next interval; emulated with the same target
                self.plan[unit.key] = _Plan(plan.target, nxt, plan.pools, fresh=False)
            for key, k in nxt.items():
                new_cells[unit.ref][key] = new_cells[unit.ref].get(key, 0) + k
            for m, models in pools.items():
                for model, g in models.items():
                    _add(new_pools[unit.ref], m, model, g)
        self.cells = new_cells
        self.pools = new_pools
        self._check(slot, pool_free, power_free)
        return {"moved": moved, "rescheduled": rescheduled}

    def _as_replicas(self, pools: Pools, unit: _Unit) -> dict[str, dict[str, int]]:
        g = max(1, unit.workload.gpus_per_replica)
        return {
            m: {model: gpus // g for model, gpus in models.items() if gpus >= g}
            for m, models in pools.items()
        }

    def _keeps(self, ws: WorkloadState, slot: _Slot, cur: Cells, wanted: Mapping[str, int]) -> bool:
        """The repair would keep the running placement whole: every cell passes every hard
        rule that holds whatever the capacity, and the replicas per region are those wanted
        (its own GPUs are in the ledger, so it fits). Skips the engine call, not its answer."""
        if not cur:
            return sum(wanted.values()) == 0
        have: dict[str, int] = {}
        regions = {n: i for i, n in enumerate(ws.region_names)}
        for (r, m), k in cur.items():
            have[r] = have.get(r, 0) + k
            ri = regions.get(r if ws.has_demand else "")
            if ri is None or not ws.static_ok[ri, slot.fleet.index[m]]:
                return False
        return all(have.get(r, 0) == n for r, n in wanted.items()) and set(have) <= set(wanted)

    def _still_worth_it(
        self, slot: _Slot, ws: WorkloadState, unit: _Unit, plan: _Plan, cur: Cells
    ) -> bool:
        """A fresh plan was solved from these very cells; a plan in progress is re-checked as
        the operator's next solve would: the target must still beat the partly moved placement
        by the hysteresis."""
        if plan.fresh:
            return True
        wl = unit.workload.with_current(planner.as_current(cur))
        wsc = ws.replace(workload=wl)
        try:
            current = _alloc_of(ws, slot.fleet, cur)
            target = _alloc_of(ws, slot.fleet, plan.target)
        except KeyError:
            return False
        keep, _ = hysteresis(slot.fleet, wsc, target, current, "")
        return not keep

    def _handover(
        self,
        unit: _Unit,
        prev: Pools,
        nxt: Pools,
        moves: Sequence[tuple[str, str, str, int]],
    ) -> Pools:
        """GPUs of the replicas that moved away, still held until their replacements are Ready
        (make-before-break)."""
        g = unit.workload.gpus_per_replica
        out: Pools = {}
        by_source: dict[str, int] = {}
        for _, src, _, n in moves:
            by_source[src] = by_source.get(src, 0) + n * g
        for src, gpus in sorted(by_source.items()):
            spare = {
                model: prev.get(src, {}).get(model, 0) - nxt.get(src, {}).get(model, 0)
                for model in prev.get(src, {})
            }
            for model in sorted(spare):
                take = min(gpus, max(0, spare[model]))
                if take:
                    _add(out, src, model, take)
                    gpus -= take
        return out

    # -------------------------------------------------------------- rebalancing
    def make_plan(self, slot: _Slot, *, initial: bool = False) -> None:
        """The rebalancer's fleet-wide solve from the current cells (skipped when no deployment
        could pass the hysteresis; see the module docstring)."""
        self._make_units(slot)
        if not initial and not self.policy.rebalances:
            return
        workloads = []
        starts: dict[str, Cells] = {}
        must = initial
        for unit in self.units:
            cur = self._unit_cells(unit)
            prev = self._unit_pools(unit, cur)
            wl = unit.workload.with_current(
                () if initial else planner.as_current(cur, self._as_replicas(prev, unit))
            )
            workloads.append(wl)
            starts[unit.key] = cur
            if not must:
                must = self._may_replace(slot, unit, wl)
        if not must:
            must = not self._all_keeps_fit(slot, workloads)
        if not must:
            self.counters["fleetSolvesSkipped"] += 1
            self.plan = {}
            return
        self.counters["fleetSolves"] += 1
        if self.w.exact:
            result = place_fleet(
                workloads, slot.fleet, self.pols, explain_all=False, prove=False, explain=False
            )
        else:
            # prepare() reads nothing of `current`: each unit's state with its workload is what
            # place_fleet would prepare (tests/simulation compare with `exact`)
            prepared = [
                self._unit_ws(slot, unit).replace(workload=wl)
                for unit, wl in zip(self.units, workloads, strict=True)
            ]
            result = place_prepared(
                slot.fleet,
                sorted(prepared, key=lambda ws: ws.key),
                explain_all=False,
                prove=False,
                explain=False,
            )
        plan: dict[str, _Plan] = {}
        for d in result.placements:
            if initial or d.stability.startswith("replaced"):
                has_demand = bool(
                    next(u for u in self.units if u.key == d.deployment).workload.regions
                )
                chosen: Pools = {}
                for a in d.assignments:
                    for model, gpus in a.gpus.items():
                        _add(chosen, a.module, model, gpus)
                plan[d.deployment] = _Plan(
                    _clean(planner.decision_cells(d, has_demand=has_demand)),
                    starts[d.deployment],
                    chosen,
                )
        self.plan = plan

    def _all_keeps_fit(self, slot: _Slot, workloads: Sequence[WorkloadView]) -> bool:
        """When the hysteresis keeps every running placement, `place_fleet` still reserves
        them one after another (priority first, then key) with `take_pools`, which fills
        lowest-power pools first rather than the pools they run on; one that does not fit that
        way is "replaced: the running placement no longer fits". Replayed here with the same
        calls, so the skip never hides such a result."""
        fleet = slot.fleet
        pool_free = fleet.pool_free.copy()
        power_free = fleet.power_free_w.copy()
        by_key = {u.key: u for u in self.units}
        for wl in sorted(workloads, key=lambda x: (-x.priority, x.key)):
            ws = self._unit_ws(slot, by_key[wl.key]).replace(workload=wl)
            current, _ = current_allocation(fleet, ws)
            if current is None:
                return False
            got, _ = take_pools(fleet, ws, current, pool_free, power_free)
            if sum(got.values()) != sum(current.values()):
                return False
        return True

    def _may_replace(self, slot: _Slot, unit: _Unit, wl: WorkloadView) -> bool:
        """Whether the fleet solve could say "replaced" for this unit: its running placement
        cannot be kept as is, or a lower bound on the cost of any placement beats it by the
        hysteresis. The bound fills each region on its cheapest rule-abiding modules up to
        what each module could hold for this deployment alone (other deployments and the
        other regions ignored), plus the minModules shortfall no placement can avoid: no
        feasible placement costs less."""
        if self.w.exact:
            return True
        ws = self._unit_ws(slot, unit)
        wsc = ws.replace(workload=wl)
        current, _ = current_allocation(slot.fleet, wsc)
        if current is None:
            return True
        old = deployment_cost(slot.fleet, wsc, current)
        return (
            _bound(ws, slot.fleet.settings) <= old * (1.0 - slot.fleet.settings.hysteresis) - 1e-9
        )

    # -------------------------------------------------------------- checks and accounting
    def _check(self, slot: _Slot, pool_free: np.ndarray, power_free: np.ndarray) -> None:
        w = self.w
        for ref, cells in self.cells.items():
            forbidden = w.forbidden[ref]
            slo = w.slo[ref]
            rtt = w.rtt_rows.get(ref)
            regions = {n: i for i, n in enumerate(w.timeline.regions[ref])}
            for (r, m), k in cells.items():
                mi = slot.fleet.index[m]
                if (r, m) in forbidden:
                    self._finding(
                        "sovereignty",
                        slot,
                        f"{ref}: {k} serving {r or 'all'} on {m}: {forbidden[(r, m)]}",
                        k,
                    )
                if slo is not None and rtt is not None and r in regions:
                    ms = float(rtt[regions[r], mi])
                    if ms > slo + 1e-9:
                        self._finding(
                            "slo",
                            slot,
                            f"{ref}: {k} serving {r} on {m} at {ms:.1f} ms > {slo:g}",
                            k,
                        )
                if not slot.usable[mi]:
                    self._finding("capacity", slot, f"{ref}: {k} replicas on unusable {m}", k)
        over = np.flatnonzero(pool_free < 0)
        for pool in over.tolist():
            m = w.names[int(w.pool_module[pool])]
            self._finding(
                "capacity", slot, f"pool {pool} of {m} oversubscribed by {-pool_free[pool]}", 1
            )
        for bad in np.flatnonzero(power_free < -1e-6).tolist():
            self._finding(
                "capacity",
                slot,
                f"{w.names[bad]} over its power budget by {-power_free[bad]:.0f} W",
                1,
            )

    def _finding(self, kind: str, slot: _Slot, text: str, n: int) -> None:
        self.violations[kind] += n
        stamp = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(slot.time))
        line = f"{stamp} {self.policy.name}: {kind}: {text}"
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(line)
        if self.w.config.strict:
            raise SimulationError(line)

    def measure(self, slot: _Slot) -> None:
        """What the placement of this slot serves, where, at what power (kept until the next
        cycle)."""
        w = self.w
        s = slot.step
        index = slot.fleet.index
        # Python floats, added in the same order as numpy would: the same sums, cheaper
        by_module = [0.0] * len(w.names)
        gpus = 0
        for holdings in (*self.pools.values(), *self.handover.values()):
            for m, models in holdings.items():
                mi = index[m]
                power = w.power_of[m]
                for model, g in models.items():
                    by_module[mi] += g * power[model]
                    gpus += g
        watts = np.array(by_module) * w.pue
        rtt_w = served_t = demand_t = within_t = capacity_t = 0.0
        replicas = unplaced = 0
        hist: dict[float, float] = {}
        for ref, cells in self.cells.items():
            placed = sum(cells.values())
            replicas += placed
            want = int(w.timeline.wanted[ref][s].sum())
            unplaced += max(0, want - placed)
            served = w.timeline.served.get(ref)
            if served is None:
                continue
            regions = w.timeline.regions[ref]
            rtt = w.rtt_lists[ref]
            slo = w.slo[ref]
            tput = w.throughput[ref]
            per_region: dict[str, list[tuple[int, int]]] = {}
            for (r, m), k in cells.items():
                per_region.setdefault(r, []).append((index[m], k))
            rates = served[s].tolist()
            for ri, region in enumerate(regions):
                rps = rates[ri]
                demand_t += rps
                here = per_region.get(region, [])
                n = sum(k for _, k in here)
                capacity_t += n * tput
                if n == 0 or rps <= 0:
                    continue
                got = min(rps, n * tput)
                served_t += got
                row = rtt[ri]
                for mi, k in here:
                    share = got * k / n
                    ms = row[mi]
                    rtt_w += share * ms
                    if slo is None or ms <= slo + 1e-9:
                        within_t += share
                    b = round(ms, 1)
                    hist[b] = hist.get(b, 0.0) + share
        self.last = {
            "watts": watts,
            "gpus": gpus,
            "rtt": rtt_w,
            "served": served_t,
            "demand": demand_t,
            "within": within_t,
            "capacity": capacity_t,
            "replicas": replicas,
            "unplaced": unplaced,
            "hist": hist,
        }

    def account(self, s: int, k0: int, k1: int) -> None:
        """Add slots [k0, k1) of step s with the last measured placement."""
        w = self.w
        slot_h = w.timeline.step_s / w.timeline.slots / 3600.0
        hours = slot_h * (k1 - k0)
        last = self.last
        ci = w.timeline.energy.true[s, k0:k1, :].sum(axis=0)
        ser = self.series
        ser["gco2e"][s] += float(last["watts"] @ ci) * slot_h / 1000.0
        ser["kwh"][s] += float(last["watts"].sum()) * hours / 1000.0
        ser["rttWeighted"][s] += last["rtt"] * hours
        ser["served"][s] += last["served"] * hours
        ser["demand"][s] += last["demand"] * hours
        ser["withinSlo"][s] += last["within"] * hours
        ser["capacity"][s] += last["capacity"] * hours
        ser["replicaHours"][s] += last["replicas"] * hours
        ser["unplacedReplicaHours"][s] += last["unplaced"] * hours
        ser["gpuHours"][s] += last["gpus"] * hours
        for b, v in last["hist"].items():
            self.hist[b] = self.hist.get(b, 0.0) + v * hours

    def busy(self) -> bool:
        """A later slot of this step can change something: a plan to adopt or in progress, or
        make-before-break holds to release."""
        return bool(self.plan) or any(self.handover.values())

    def result(self) -> PolicyResult:
        t = self.w.timeline
        counters = dict(self.counters)
        counters["periodSeconds"] = round(t.steps * t.step_s)
        return PolicyResult(
            name=self.policy.name,
            description=self.policy.description,
            series=self.series,
            rtt_histogram=dict(sorted(self.hist.items())),
            violations=dict(self.violations),
            findings=list(self.findings),
            counters=counters,
            seconds=self.seconds,
            gpus_total=self.w.gpus_total,
        )


# ------------------------------------------------------------------------------ the loop
def run_policies(
    scenario: Scenario,
    timeline: Timeline,
    config: SimulationConfig,
    names: Sequence[str],
    *,
    rtt: RttTable | None = None,
    progress: Progress | None = None,
    exact: bool = False,
    observe: Callable[[str, int, Mapping[str, Cells]], None] | None = None,
) -> list[PolicyResult]:
    """Simulate the named policies in this process, in lockstep (they share the per-slot fleet
    and its caches, never their state). `exact` turns off the shortcuts that skip engine work
    whose answer is known (for tests: results must not change). `observe(policy, step,
    cells)` sees every policy's placement at the end of every step (deployment -> (region,
    module) -> replicas)."""
    world = _World(scenario, timeline, config, rtt)
    world.exact = exact
    runs = [_Run(world, policy(n)) for n in names]
    slots = timeline.slots
    every = config.plan_every
    for s in range(timeline.steps):
        since = dict.fromkeys(range(len(runs)), 0)  # first slot not accounted yet, per run
        k = 0
        while k < slots:
            slot, changed = world.slot(s, k)
            for i, run in enumerate(runs):
                began = time.perf_counter()
                if s == 0 and k == 0:
                    run.make_plan(slot, initial=True)
                    counts = run.cycle(slot, initial=True)
                    run.plan = {}
                elif k == 0 or changed or run.busy():
                    counts = run.cycle(slot)
                else:
                    run.seconds += time.perf_counter() - began
                    continue
                run.series["moved"][s] += counts["moved"]
                run.series["rescheduled"][s] += counts["rescheduled"]
                if k == 0 and s % every == 0:
                    run.make_plan(slot)
                if k > since[i]:
                    run.account(s, since[i], k)  # the placement measured before this cycle
                run.measure(slot)
                since[i] = k
                run.seconds += time.perf_counter() - began
            # slots where no module changes state and no policy has work are skipped
            k += 1
            while k < slots and world.quiet(s, k) and not any(r.busy() for r in runs):
                k += 1
        for i, run in enumerate(runs):
            run.account(s, since[i], slots)
        if observe is not None:
            for run in runs:
                observe(run.policy.name, s, run.cells)
        if progress is not None:
            progress(s + 1)
    return [r.result() for r in runs]


def _worker(
    index: int,
    scenario: Scenario,
    timeline: Timeline,
    config: SimulationConfig,
    names: Sequence[str],
    rtt: RttTable | None,
    queue: Any,
) -> None:
    """One process's share of the policies; reports progress and results through `queue`."""

    def report(done: int) -> None:
        if done % 24 == 0 or done == timeline.steps:
            queue.put(("progress", index, done))

    try:
        out = run_policies(scenario, timeline, config, names, rtt=rtt, progress=report)
    except Exception as exc:  # handed to the parent, which raises it
        queue.put(("error", index, f"{type(exc).__name__}: {exc}"))
        return
    queue.put(("done", index, out))


#: Relative cost of a policy-year, to balance worker processes: CPU seconds of each policy's
#: year of the sample fleet (bench/simulate.py, mean of two runs on 2026-12-02). Every policy
#: replays every cycle (static: 15 s); fleet-wide solves add the rest (carbon-only re-solves
#: most hours).
WEIGHT = {
    "carbon-only": 58.4,
    "serve-in-country": 48.0,
    "latency-only": 27.5,
    "engine": 26.7,
    "static": 14.7,
}


def groups(names: Sequence[str], workers: int) -> list[list[str]]:
    """Policies split over workers so the heaviest group is as light as it can be (by
    `WEIGHT`; every split is tried when there are few, as there are: five policies on two
    workers is 32 splits; else heaviest first onto the least loaded). Each group keeps the
    configured order; ties go to the first split found, so the result is deterministic."""
    n = max(1, min(workers, len(names)))
    weight = [WEIGHT.get(x, 1.0) for x in names]
    best: list[int] | None = None
    if n ** len(names) <= 100_000:
        best_load = math.inf
        for assign in itertools.product(range(n), repeat=len(names)):
            if len(set(assign)) < n:
                continue  # every worker gets a policy
            load = [0.0] * n
            for i, w in zip(assign, weight, strict=True):
                load[i] += w
            if max(load) < best_load - 1e-9:
                best_load, best = max(load), list(assign)
    if best is None:
        load = [0.0] * n
        best = [0] * len(names)
        for j in sorted(range(len(names)), key=lambda j: (-weight[j], j)):
            i = load.index(min(load))
            best[j] = i
            load[i] += weight[j]
    out: list[list[str]] = [[] for _ in range(n)]
    for name, i in zip(names, best, strict=True):
        out[i].append(name)
    return [g for g in out if g]


def simulate(
    scenario: Scenario,
    timeline: Timeline,
    config: SimulationConfig,
    *,
    rtt: RttTable | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[PolicyResult]:
    """Every configured policy over the timeline; `progress(steps done, steps)` as it goes
    (the slowest group's count when running in several processes). Results are in
    `config.policies` order and do not depend on `config.workers`."""
    problems = config.check()
    if problems:
        raise SimulationError("; ".join(problems))
    parts = groups(config.policies, config.workers)
    total = timeline.steps
    if len(parts) == 1:
        results = run_policies(
            scenario,
            timeline,
            config,
            parts[0],
            rtt=rtt,
            progress=(lambda done: progress(done, total)) if progress else None,
        )
    else:
        results = _in_processes(scenario, timeline, config, parts, rtt, progress)
    by_name = {r.name: r for r in results}
    return [by_name[n] for n in config.policies]


def _in_processes(
    scenario: Scenario,
    timeline: Timeline,
    config: SimulationConfig,
    parts: Sequence[Sequence[str]],
    rtt: RttTable | None,
    progress: Callable[[int, int], None] | None,
) -> list[PolicyResult]:
    """Run each group of policies in a forked process (inputs inherited, results queued)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker, args=(i, scenario, timeline, config, names, rtt, queue), daemon=True
        )
        for i, names in enumerate(parts)
    ]
    for proc in procs:
        proc.start()
    done = [0] * len(parts)
    results: dict[int, list[PolicyResult]] = {}
    try:
        while len(results) < len(parts):
            try:
                kind, index, payload = queue.get(timeout=1.0)
            except Exception:  # queue.Empty: check the workers are alive
                dead = [p for i, p in enumerate(procs) if not p.is_alive() and i not in results]
                if dead and queue.empty():
                    raise SimulationError("a simulation worker died") from None
                continue
            if kind == "progress":
                done[index] = payload
                if progress is not None:
                    progress(min(done), timeline.steps)
            elif kind == "error":
                raise SimulationError(payload)
            else:
                results[index] = payload
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
    if progress is not None:
        progress(timeline.steps, timeline.steps)
    return [r for i in range(len(parts)) for r in results[i]]


def period_steps(start: float, end: float, step_s: float) -> FloatArray:
    """Step start times (epoch seconds) from start (inclusive) to end (exclusive)."""
    n = max(0, math.ceil((end - start) / step_s - 1e-9))
    return start + np.arange(n, dtype=np.float64) * step_s


__all__ = [
    "MAX_FINDINGS",
    "SERIES_FIELDS",
    "PolicyResult",
    "Scenario",
    "SimulationConfig",
    "SimulationError",
    "Timeline",
    "aggregate",
    "groups",
    "period_steps",
    "run_policies",
    "simulate",
    "weighted_percentile",
]
