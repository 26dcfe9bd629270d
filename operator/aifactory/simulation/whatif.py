"""What would happen if the fleet changed: the placement diff, computed, never applied. Pure.

`what_if(scenario, changes)` takes a fleet snapshot (manifests, or live objects with their
status) and a list of changes:

* `lose-module X`: X is NotReady past tolerationSeconds (or gone): its replicas leave at once;
* `cordon Y`: Y takes nothing new; what runs there stays;
* `policy P`: a SovereigntyPolicy is added (or replaces the one of the same name);
* `scale-demand R F`: every deployment's demand in region R is multiplied by F.

It answers what the operator would do, with the operator's own rules: *before* is the running
placement (status.placements when the objects have status; else where the engine places them
now, fleet-wide); *after* is the keep-or-repair the operator runs on the changed fleet (each
deployment in priority order, hysteresis 100%, against what the others hold), and with
`rebalance` also the next fleet-wide rebalance with the configured hysteresis, taken to its end.
Replicas leave at once from a lost module or a cell an Enforce policy now forbids; every other
move is make-before-break and budgeted over several rebalance intervals (`moves` counts them
all, `at_once` those that do not wait).

Per deployment it reports replicas per module before and after, replicas moved, unplaced
replicas, compliance changes (cells newly forbidden by an Enforce policy, Audit findings
before and after), the engine's cost, gCO2e/h (GPUs x board power x PUE x carbon intensity /
1000, as `placement.accounting`) and the replica-weighted mean RTT (ms).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aifactory.api import InferenceDeployment, SovereigntyPolicy
from aifactory.controllers import planner
from aifactory.placement import FleetState, PlacementSettings, PolicyView, WorkloadView
from aifactory.placement.assignment import deployment_cost, solve_one
from aifactory.placement.compliance import forbidden_cells
from aifactory.placement.cycle import prepare
from aifactory.placement.filters.sovereignty import audit_findings
from aifactory.placement.from_api import engine_inputs, held_gpus
from aifactory.placement.optimize import place_fleet
from aifactory.placement.rtt import RttTable
from aifactory.placement.state import WorkloadState
from aifactory.simulation.replay import Scenario

KINDS = ("lose-module", "cordon", "policy", "scale-demand")


class WhatIfError(ValueError):
    """A change that does not apply to this fleet (unknown module or region)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change (see the module docstring); `policy` for kind "policy"."""

    kind: str
    target: str
    factor: float = 1.0
    policy: SovereigntyPolicy | None = None

    def describe(self) -> str:
        if self.kind == "scale-demand":
            return f"scale demand in {self.target} x{self.factor:g}"
        if self.kind == "policy":
            return f"apply SovereigntyPolicy {self.target}"
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class DeploymentDiff:
    """One deployment before and after. Replicas per module; cost in the brief's units;
    grams in gCO2e/h; RTT in ms (None without demand regions or replicas)."""

    deployment: str
    before: Mapping[str, int]
    after: Mapping[str, int]
    moved: int
    at_once: int
    unplaced_before: int
    unplaced_after: int
    newly_forbidden: tuple[str, ...]
    audit_before: tuple[str, ...]
    audit_after: tuple[str, ...]
    cost_before: float
    cost_after: float
    grams_before: float
    grams_after: float
    rtt_before: float | None
    rtt_after: float | None
    why: str = ""

    @property
    def changed(self) -> bool:
        return dict(self.before) != dict(self.after) or self.unplaced_after != self.unplaced_before

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "deployment": self.deployment,
            "before": dict(self.before),
            "after": dict(self.after),
            "replicasMoved": self.moved,
            "movedAtOnce": self.at_once,
            "unplacedBefore": self.unplaced_before,
            "unplacedAfter": self.unplaced_after,
            "newlyForbidden": list(self.newly_forbidden),
            "auditBefore": list(self.audit_before),
            "auditAfter": list(self.audit_after),
            "costBefore": r(self.cost_before),
            "costAfter": r(self.cost_after),
            "gramsPerHourBefore": r(self.grams_before),
            "gramsPerHourAfter": r(self.grams_after),
            "meanRttMsBefore": r(self.rtt_before),
            "meanRttMsAfter": r(self.rtt_after),
            "why": self.why,
        }


@dataclass(frozen=True)
class WhatIf:
    """The answer: per-deployment diffs and fleet totals."""

    changes: tuple[Change, ...]
    deployments: tuple[DeploymentDiff, ...]
    before_source: str
    rebalance: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def totals(self) -> dict[str, Any]:
        d = self.deployments
        return {
            "replicasMoved": sum(x.moved for x in d),
            "movedAtOnce": sum(x.at_once for x in d),
            "unplacedBefore": sum(x.unplaced_before for x in d),
            "unplacedAfter": sum(x.unplaced_after for x in d),
            "newlyForbidden": sum(len(x.newly_forbidden) for x in d),
            "costBefore": round(sum(x.cost_before for x in d), 3),
            "costAfter": round(sum(x.cost_after for x in d), 3),
            "gramsPerHourBefore": round(sum(x.grams_before for x in d), 3),
            "gramsPerHourAfter": round(sum(x.grams_after for x in d), 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.describe() for c in self.changes],
            "before": self.before_source,
            "rebalance": self.rebalance,
            "deployments": [x.to_dict() for x in self.deployments],
            "totals": self.totals(),
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------ changes
def parse_change(kind: str, value: str) -> Change:
    """`--lose-module X`, `--cordon Y`, `--scale-demand REGION=FACTOR` as a Change."""
    if kind == "scale-demand":
        region, sep, factor = value.partition("=")
        try:
            f = float(factor)
        except ValueError:
            f = math.nan
        if not sep or not region or not math.isfinite(f) or f < 0:
            raise WhatIfError(f"--scale-demand {value!r}: expected REGION=FACTOR, e.g. eu-west=2")
        return Change(kind, region, f)
    if kind not in KINDS:
        raise WhatIfError(f"unknown change {kind!r}; one of {', '.join(KINDS)}")
    return Change(kind, value)


def apply_changes(scenario: Scenario, changes: Sequence[Change]) -> Scenario:
    """The fleet after the changes (a new Scenario; the input is untouched)."""
    modules = {m.name: m for m in scenario.modules}
    policies = {p.name: p for p in scenario.policies}
    deployments = list(scenario.deployments)
    regions = {r.name for d in deployments for r in d.spec.demand.regions}
    for c in changes:
        if c.kind in ("lose-module", "cordon"):
            if c.target not in modules:
                raise WhatIfError(f"{c.describe()}: no module {c.target}")
            if c.kind == "lose-module":
                del modules[c.target]
            else:
                m = modules[c.target]
                modules[c.target] = m.model_copy(
                    update={"spec": m.spec.model_copy(update={"schedulable": False})}
                )
        elif c.kind == "policy":
            assert c.policy is not None
            policies[c.policy.name] = c.policy
        elif c.kind == "scale-demand":
            if c.target not in regions:
                raise WhatIfError(f"{c.describe()}: no demand region {c.target}")
            deployments = [_scaled(d, c.target, c.factor) for d in deployments]
    return dataclasses.replace(
        scenario,
        modules=tuple(modules.values()),
        policies=tuple(policies.values()),
        deployments=tuple(deployments),
    )


def _scaled(d: InferenceDeployment, region: str, factor: float) -> InferenceDeployment:
    if not any(r.name == region for r in d.spec.demand.regions):
        return d
    demand = d.spec.demand
    new = [
        r.model_copy(update={"requests_per_second": r.requests_per_second * factor})
        if r.name == region
        else r
        for r in demand.regions
    ]
    spec = d.spec.model_copy(update={"demand": demand.model_copy(update={"regions": new})})
    return d.model_copy(update={"spec": spec})


# ------------------------------------------------------------------------------ placement
@dataclass
class _Placed:
    cells: dict[str, planner.Cells]
    pools: dict[str, dict[str, dict[str, int]]]


def _inputs(
    scenario: Scenario, settings: PlacementSettings, rtt: RttTable | None, live: bool
) -> tuple[FleetState, list[WorkloadView], tuple[PolicyView, ...]]:
    inputs = engine_inputs(
        scenario.modules,
        scenario.deployments,
        scenario.policies,
        scenario.namespaces,
        assume_ready=not live,
        priority_classes=scenario.priority_classes,
    )
    return FleetState(inputs.modules, settings, rtt=rtt), list(inputs.workloads), inputs.policies


def _status_cells(scenario: Scenario) -> _Placed:
    cells: dict[str, planner.Cells] = {}
    pools: dict[str, dict[str, dict[str, int]]] = {}
    for d in scenario.deployments:
        placements = d.status.placements if d.status else []
        cells[d.ref] = planner.cells_of(placements, has_demand=bool(d.spec.demand.regions))
        # status.placements[].gpus where the operator wrote it, else the engine's own rule
        guessed = held_gpus(scenario.modules, [d])
        pools[d.ref] = {
            p.module: dict(p.gpus) if p.gpus else dict(guessed.get(p.module, {}))
            for p in placements
            if p.replicas > 0
        }
    return _Placed(cells, pools)


def _fresh(
    fleet: FleetState, workloads: list[WorkloadView], pols: tuple[PolicyView, ...]
) -> _Placed:
    res = place_fleet([dataclasses.replace(w, current=()) for w in workloads], fleet, pols)
    cells = {}
    pools: dict[str, dict[str, dict[str, int]]] = {}
    for d in res.placements:
        wl = next(w for w in workloads if w.key == d.deployment)
        cells[d.deployment] = planner.decision_cells(d, has_demand=bool(wl.regions))
        pools[d.deployment] = {a.module: dict(a.gpus) for a in d.assignments}
    return _Placed(cells, pools)


def _with_current(wl: WorkloadView, placed: _Placed) -> WorkloadView:
    g = max(1, wl.gpus_per_replica)
    pools = {
        m: {model: n // g for model, n in models.items() if n >= g}
        for m, models in placed.pools.get(wl.key, {}).items()
    }
    cells = {k: v for k, v in placed.cells.get(wl.key, {}).items()}
    return dataclasses.replace(wl, current=planner.as_current(cells, pools))


def _repair_all(
    fleet: FleetState,
    workloads: list[WorkloadView],
    pols: tuple[PolicyView, ...],
    before: _Placed,
) -> tuple[_Placed, dict[str, WorkloadState]]:
    """The operator's keep-or-repair for every deployment, in priority order, on a ledger."""
    keep = dataclasses.replace(fleet.settings, hysteresis=1.0)
    fleet_keep = FleetState(fleet.modules, keep, rtt=fleet.rtt_table)
    pool_free = fleet_keep.pool_free.copy()
    power_free = fleet_keep.power_free_w.copy()
    index = _pool_index(fleet_keep)
    # every deployment's running GPUs are held before anyone is repaired
    held: dict[str, list[tuple[int, int]]] = {}
    for wl in workloads:
        parts = []
        for m, models in before.pools.get(wl.key, {}).items():
            for model, gpus in models.items():
                p = index.get((m, model))
                if p is not None:
                    parts.append((p, gpus))
        held[wl.key] = parts
        _consume(fleet_keep, parts, pool_free, power_free, 1)
    out = _Placed({}, {})
    states: dict[str, WorkloadState] = {}
    for wl in sorted(workloads, key=lambda w: (-w.priority, w.key)):
        _consume(fleet_keep, held[wl.key], pool_free, power_free, -1)
        wlc = _with_current(wl, before)
        ws = prepare(fleet_keep, wlc, pols, pool_free=pool_free, power_free_w=power_free)
        outcome = solve_one(fleet_keep, ws, pool_free, power_free)  # reserves what it takes
        states[wl.key] = ws
        out.cells[wl.key] = _cells(ws, fleet_keep, outcome.alloc)
        out.pools[wl.key] = _pools(fleet_keep, outcome.parts, wl.gpus_per_replica)
    return out, states


def _pool_index(fleet: FleetState) -> dict[tuple[str, str], int]:
    out = {}
    for p in range(fleet.n_pools):
        mi = int(fleet.pool_module[p])
        out[(fleet.names[mi], fleet.pool_model_name[p])] = p
    return out


def _consume(
    fleet: FleetState,
    parts: list[tuple[int, int]],
    pool_free: np.ndarray,
    power_free: np.ndarray,
    sign: int,
) -> None:
    for p, gpus in parts:
        m = int(fleet.pool_module[p])
        pool_free[p] -= sign * gpus
        power_free[m] -= sign * gpus * float(fleet.pool_power_w[p]) * float(fleet.pue[m])


def _cells(
    ws: WorkloadState, fleet: FleetState, alloc: Mapping[tuple[int, int], int]
) -> planner.Cells:
    out: planner.Cells = {}
    for (r, m), k in alloc.items():
        if k > 0:
            key = (ws.region_names[r] if ws.has_demand else "", fleet.names[m])
            out[key] = out.get(key, 0) + k
    return out


def _pools(
    fleet: FleetState, parts: Mapping[int, list[tuple[int, int]]], g: int
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for mi, pp in parts.items():
        for p, n in pp:
            model = fleet.pool_model_name[p]
            slot = out.setdefault(fleet.names[mi], {})
            slot[model] = slot.get(model, 0) + n * g
    return out


def _rebalanced(
    fleet: FleetState, workloads: list[WorkloadView], pols: tuple[PolicyView, ...], now: _Placed
) -> tuple[_Placed, list[str]]:
    """The next fleet-wide plan, taken to its end where it says "replaced"."""
    res = place_fleet([_with_current(w, now) for w in workloads], fleet, pols)
    out = _Placed(dict(now.cells), dict(now.pools))
    notes = []
    for d in res.placements:
        if not d.stability.startswith("replaced"):
            continue
        wl = next(w for w in workloads if w.key == d.deployment)
        out.cells[d.deployment] = planner.decision_cells(d, has_demand=bool(wl.regions))
        out.pools[d.deployment] = {a.module: dict(a.gpus) for a in d.assignments}
        notes.append(f"{d.deployment}: rebalance {d.stability}")
    return out, notes


# ------------------------------------------------------------------------------ the question
def what_if(
    scenario: Scenario,
    changes: Sequence[Change],
    *,
    settings: PlacementSettings | None = None,
    rtt: RttTable | None = None,
    rebalance: bool = False,
    live: bool | None = None,
) -> WhatIf:
    """The placement the operator would reach after `changes`, against the one running now.

    Deployments with status give *before*; `live` (default: the same) reads module readiness
    from status as the operator does, else modules are Ready. Pure: nothing is applied.
    """
    settings = settings or PlacementSettings()
    running = any(d.status is not None for d in scenario.deployments)
    live = running if live is None else live
    fleet0, wls0, pols0 = _inputs(scenario, settings, rtt, live)
    if running:
        before = _status_cells(scenario)
        source = "status.placements (the running placement)"
    else:
        before = _fresh(fleet0, wls0, pols0)
        source = "the engine's fleet-wide placement of the manifests as they are"
    changed = apply_changes(scenario, changes)
    fleet1, wls1, pols1 = _inputs(changed, settings, rtt, live)
    after, states = _repair_all(fleet1, wls1, pols1, before)
    notes: list[str] = []
    if rebalance:
        after, notes = _rebalanced(fleet1, wls1, pols1, after)
    lost = {c.target for c in changes if c.kind == "lose-module"}
    diffs = []
    w0 = {w.key: w for w in wls0}
    for wl in sorted(wls1, key=lambda w: w.key):
        key = wl.key
        ws1 = states[key]
        b, a = before.cells.get(key, {}), after.cells.get(key, {})
        forbidden = forbidden_cells(fleet1, ws1)
        at_once_cells = {cell: n for cell, n in b.items() if cell[1] in lost or cell in forbidden}
        moved = _moved(b, a)
        at_once = sum(min(n, max(0, n - a.get(cell, 0))) for cell, n in at_once_cells.items())
        ws0 = prepare(fleet0, dataclasses.replace(w0[key], current=()), pols0) if key in w0 else ws1
        diffs.append(
            DeploymentDiff(
                deployment=key,
                before=planner.per_module(b),
                after=planner.per_module(a),
                moved=moved,
                at_once=at_once,
                unplaced_before=max(0, ws0.total - sum(b.values())),
                unplaced_after=max(0, ws1.total - sum(a.values())),
                newly_forbidden=tuple(
                    f"{n} serving {cell[0] or 'all'} on {cell[1]}: {forbidden[cell]}"
                    for cell, n in sorted(b.items())
                    if cell in forbidden
                ),
                audit_before=_audit(fleet0, ws0, b),
                audit_after=_audit(fleet1, ws1, a),
                cost_before=_cost(fleet0, ws0, b),
                cost_after=_cost(fleet1, ws1, a),
                grams_before=_grams(fleet0, before.pools.get(key, {})),
                grams_after=_grams(fleet1, after.pools.get(key, {})),
                rtt_before=_rtt(fleet0, ws0, b),
                rtt_after=_rtt(fleet1, ws1, a),
            )
        )
    return WhatIf(tuple(changes), tuple(diffs), source, rebalance, tuple(notes))


def _moved(before: planner.Cells, after: planner.Cells) -> int:
    """Replicas that leave a module while their region keeps (some of) its replicas elsewhere:
    per region, min(replicas leaving modules, replicas arriving on others)."""
    total = 0
    for r in {k[0] for k in before} | {k[0] for k in after}:
        out = sum(max(0, n - after.get((rr, m), 0)) for (rr, m), n in before.items() if rr == r)
        arrive = sum(max(0, n - before.get((rr, m), 0)) for (rr, m), n in after.items() if rr == r)
        total += min(out, arrive)
    return total


def _alloc(
    ws: WorkloadState, fleet: FleetState, cells: planner.Cells
) -> dict[tuple[int, int], int]:
    regions = {n: i for i, n in enumerate(ws.region_names)}
    out: dict[tuple[int, int], int] = {}
    for (r, m), k in cells.items():
        ri = regions.get(r if ws.has_demand else "")
        mi = fleet.index.get(m)
        if ri is None or mi is None or k <= 0:
            continue
        out[(ri, mi)] = out.get((ri, mi), 0) + k
    return out


def _cost(fleet: FleetState, ws: WorkloadState, cells: planner.Cells) -> float:
    return float(deployment_cost(fleet, ws, _alloc(ws, fleet, cells)))


def _grams(fleet: FleetState, pools: Mapping[str, Mapping[str, int]]) -> float:
    total = 0.0
    for m, models in pools.items():
        mi = fleet.index.get(m)
        if mi is None:
            continue
        power = {p.model: p.power_w for p in fleet.modules[mi].pools}
        watts = sum(n * power.get(model, 0.0) for model, n in models.items())
        total += watts * float(fleet.pue[mi]) * float(fleet.carbon[mi]) / 1000.0
    return total


def _rtt(fleet: FleetState, ws: WorkloadState, cells: planner.Cells) -> float | None:
    if ws.rtt is None:
        return None
    n = 0
    acc = 0.0
    for (ri, mi), k in _alloc(ws, fleet, cells).items():
        acc += k * float(ws.rtt[ri, mi])
        n += k
    return acc / n if n else None


def _audit(fleet: FleetState, ws: WorkloadState, cells: planner.Cells) -> tuple[str, ...]:
    found: list[str] = []
    for m in sorted(planner.per_module(cells)):
        mi = fleet.index.get(m)
        if mi is not None:
            found += audit_findings(fleet, ws, mi)
    return tuple(dict.fromkeys(found))


def policy_change(policy: SovereigntyPolicy) -> Change:
    """A Change applying `policy`."""
    return Change("policy", policy.name, policy=policy)


__all__ = [
    "KINDS",
    "Change",
    "DeploymentDiff",
    "WhatIf",
    "WhatIfError",
    "apply_changes",
    "parse_change",
    "policy_change",
    "what_if",
]
