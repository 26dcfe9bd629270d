"""What the running operator converges to, computed offline (`aifactoryctl place --mode operator`).

The operator does not solve the fleet once. Its placement loop places each queued deployment
against what every other one holds, keeping whatever runs unless it breaks a hard rule
(hysteresis 100%), in order of priority value (highest first), then namespace/name. Every
`rebalanceInterval` its rebalancer solves the whole fleet (`place_fleet`, real hysteresis) from
the running placements, and each deployment that plan would replace moves towards its target,
at most `disruptionBudget` replicas per interval. So once settled, a deployment sits where a
fleet plan put it if that plan beat its incremental placement by the hysteresis, else where
incremental placement put it.

`converge` replays exactly that on a fleet that holds still: the incremental pass, then rebalance
rounds until a plan moves nothing (or `max_rounds`). Each round moves every replaced deployment
one budgeted step (`step_towards`, the move rule of the operator's planner), so a plan made
halfway is made from the halfway placement, as in the operator. The result is reported as the
operator's keep-or-repair cycle would report it: each deployment explained against what all the
others hold.

Not modelled: timing (deployments that arrive seconds apart are placed in arrival order, not
in this order, when they fall into different batches), demand and energy that change while it
converges, and member clusters that refuse or delay Pods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aifactory.placement.assignment import (
    build_decision,
    module_usage,
    solve_one,
    take_pools,
)
from aifactory.placement.cycle import prepare
from aifactory.placement.explain import free_after
from aifactory.placement.model import (
    CurrentAssignment,
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
)
from aifactory.placement.optimize import place_fleet
from aifactory.placement.result import Decision, FleetDecision
from aifactory.placement.rtt import RttTable
from aifactory.placement.state import FleetState

#: (region, module) -> replicas; region "" for a deployment without demand regions.
Cells = dict[tuple[str, str], int]


def operator_order(workloads: Iterable[WorkloadView]) -> list[WorkloadView]:
    """The order the operator's placement loop plans a batch in: priority value descending,
    then namespace/name."""
    return sorted(workloads, key=lambda w: (-w.priority, w.key))


def cells_of(decision: Decision, *, has_demand: bool) -> Cells:
    """A decision's assignments as cells."""
    out: Cells = {}
    for a in decision.assignments:
        if has_demand and a.regions:
            for r, k in a.regions.items():
                if k > 0:
                    out[(r, a.module)] = out.get((r, a.module), 0) + k
        elif a.replicas > 0:
            out[("", a.module)] = out.get(("", a.module), 0) + a.replicas
    return out


def as_current(cells: Mapping[tuple[str, str], int]) -> tuple[CurrentAssignment, ...]:
    """Cells as the engine's running placement."""
    by_module: dict[str, dict[str, int]] = {}
    for (r, m), k in sorted(cells.items()):
        if k > 0:
            by_module.setdefault(m, {})[r] = by_module.get(m, {}).get(r, 0) + k
    return tuple(
        CurrentAssignment(m, sum(rs.values()), {r: k for r, k in rs.items() if r})
        for m, rs in sorted(by_module.items())
    )


@dataclass(slots=True)
class _Slot:
    n: int
    module: str


def step_towards(
    current: Mapping[tuple[str, str], int],
    target: Mapping[tuple[str, str], int],
    wanted: Mapping[str, int],
    budget: int,
) -> Cells:
    """The next placement on the way from `current` to `target`, by the operator's rule.

    Per region (in name order): replicas above what is wanted go at once, from the cells the
    target wants least of (largest surplus first, ties by module name); replicas the target adds
    beyond what runs are added at once (largest deficit first); the rest are moves, at most
    `budget` in all. The same rule as `controllers.planner.step` with nothing involuntary and
    the previous step Ready (a test keeps the two in step).
    """
    cells: Cells = {k: v for k, v in current.items() if v > 0}
    left = max(0, budget)
    regions = sorted({r for r, _ in cells} | {r for r, _ in target} | set(wanted))
    for r in regions:
        cur = {m: k for (rr, m), k in cells.items() if rr == r}
        tgt = {m: k for (rr, m), k in target.items() if rr == r and k > 0}
        surplus = [
            _Slot(cur[m] - tgt.get(m, 0), m)
            for m in sorted(cur, key=lambda m: (-(cur[m] - tgt.get(m, 0)), m))
            if cur[m] > tgt.get(m, 0)
        ]
        deficit = [
            _Slot(tgt[m] - cur.get(m, 0), m)
            for m in sorted(tgt, key=lambda m: (-(tgt[m] - cur.get(m, 0)), m))
            if tgt[m] > cur.get(m, 0)
        ]
        have, want, aim = sum(cur.values()), int(wanted.get(r, 0)), sum(tgt.values())
        down = max(0, have - want)  # fewer wanted: the surplus goes now
        for item in surplus:
            if down <= 0:
                break
            k = min(down, item.n)
            cells[(r, item.module)] -= k
            item.n -= k
            down -= k
            have -= k
        up = max(0, aim - have)  # more than run: added now
        for item in deficit:
            if up <= 0:
                break
            k = min(up, item.n)
            cells[(r, item.module)] = cells.get((r, item.module), 0) + k
            item.n -= k
            up -= k
        sur = [x for x in surplus if x.n > 0]
        dfc = [x for x in deficit if x.n > 0]
        si = di = 0
        while left > 0 and si < len(sur) and di < len(dfc):  # the rest: budgeted moves
            src, dst = sur[si], dfc[di]
            k = min(src.n, dst.n, left)
            cells[(r, src.module)] -= k
            cells[(r, dst.module)] = cells.get((r, dst.module), 0) + k
            left -= k
            src.n -= k
            dst.n -= k
            if src.n == 0:
                si += 1
            if dst.n == 0:
                di += 1
    return {k: v for k, v in sorted(cells.items()) if v > 0}


@dataclass(frozen=True)
class Convergence:
    """Where the operator settles, and how it gets there."""

    #: The settled placement, each deployment explained against what the others hold.
    result: FleetDecision
    #: The incremental pass alone (what the operator places before any rebalance).
    incremental: FleetDecision
    #: Deployment -> replicas the rebalancer moved (or added) to get there.
    moved: Mapping[str, int]
    #: Rebalance rounds that changed something.
    rounds: int
    #: False when `max_rounds` ran out while plans still moved replicas (a flapping fleet).
    converged: bool


def _wanted(wl: WorkloadView) -> dict[str, int]:
    return {r.name: r.replicas for r in wl.regions} or {"": wl.replicas}


def _keep_cycle(
    fleet: FleetState,
    workloads: Sequence[WorkloadView],
    policies: Sequence[PolicyView],
    cells: Mapping[str, Cells],
    *,
    explain_all: bool | None,
) -> list[Decision]:
    """One keep-or-repair cycle over every deployment, as the operator's placement loop runs it:
    each placed against what every other one holds (its own GPUs released first)."""
    pool_free = fleet.pool_free.copy()
    power_free = fleet.power_free_w.copy()
    held: dict[str, list[tuple[int, int]]] = {}
    states = {}
    for wl in workloads:
        current = dataclasses.replace(wl, current=as_current(cells.get(wl.key, {})))
        ws = prepare(fleet, current, policies)
        states[wl.key] = (current, ws)
        alloc: dict[tuple[int, int], int] = {}
        for (r, m), k in cells.get(wl.key, {}).items():
            key = (ws.region_names.index(r) if r in ws.region_names else 0, fleet.index[m])
            alloc[key] = alloc.get(key, 0) + k
        _, parts = take_pools(fleet, ws, alloc, pool_free, power_free)
        held[wl.key] = [pp for m_parts in parts.values() for pp in m_parts]
    decisions = []
    for wl in operator_order(workloads):
        current, _ = states[wl.key]
        g = wl.gpus_per_replica
        fleet.consume(held[wl.key], g, pool_free, power_free, sign=-1)
        ws = prepare(fleet, current, policies, pool_free=pool_free, power_free_w=power_free)
        pf, pw = pool_free.copy(), power_free.copy()
        outcome = solve_one(fleet, ws, pf, pw)
        decisions.append(build_decision(fleet, ws, outcome, full=explain_all))
        fleet.consume(held[wl.key], g, pool_free, power_free)
    return decisions


def place_incremental(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    explain_all: bool | None = None,
) -> FleetDecision:
    """The operator's placement loop on deployments that all arrive at once: one at a time in
    `operator_order`, each on what the ones before it left, a running placement kept unless
    it breaks a hard rule (hysteresis 100%)."""
    fleet = modules if isinstance(modules, FleetState) else FleetState(modules, settings)
    keep = dataclasses.replace(fleet.settings, hysteresis=1.0)
    saved = fleet.settings
    fleet.settings = keep
    try:
        pols = tuple(policies)
        pool_free = fleet.pool_free.copy()
        power_free = fleet.power_free_w.copy()
        decisions: list[Decision] = []
        for wl in operator_order(workloads):
            ws = prepare(fleet, wl, pols, pool_free=pool_free, power_free_w=power_free)
            outcome = solve_one(fleet, ws, pool_free, power_free)
            decisions.append(build_decision(fleet, ws, outcome, full=explain_all))
    finally:
        fleet.settings = saved
    return FleetDecision(
        placements=tuple(sorted(decisions, key=lambda d: d.deployment)),
        modules=module_usage(fleet, pool_free),
        total_cost=sum(d.cost for d in decisions),
        solver="sequential",
    )


def converge(
    workloads: Sequence[WorkloadView],
    modules: Sequence[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    rtt: RttTable | None = None,
    disruption_budget: int = 2,
    max_rounds: int = 100,
    explain_all: bool | None = None,
) -> Convergence:
    """Replay the operator on a fleet that holds still until it settles (see the module doc).

    `settings.hysteresis` is the rebalancer's (the operator's `hysteresis` setting);
    `disruption_budget` its replicas per deployment and interval.
    """
    settings = settings or PlacementSettings()
    pols = tuple(policies)
    mods = tuple(modules)
    by_key = {w.key: w for w in workloads}
    first = place_incremental(
        workloads, FleetState(mods, settings, rtt=rtt), pols, explain_all=explain_all
    )
    cells: dict[str, Cells] = {
        d.deployment: cells_of(d, has_demand=bool(by_key[d.deployment].regions))
        for d in first.placements
    }
    moved: dict[str, int] = {}
    rounds = 0
    converged = False
    plan: FleetDecision | None = None
    for _ in range(max_rounds):
        running = [dataclasses.replace(w, current=as_current(cells[w.key])) for w in workloads]
        plan = place_fleet(running, FleetState(mods, settings, rtt=rtt), pols)
        changed = False
        for d in plan.placements:
            if not d.stability.startswith("replaced"):
                continue
            wl = by_key[d.deployment]
            target = cells_of(d, has_demand=bool(wl.regions))
            nxt = step_towards(cells[d.deployment], target, _wanted(wl), disruption_budget)
            if nxt != cells[d.deployment]:
                before = cells[d.deployment]
                gained = sum(max(0, k - before.get(key, 0)) for key, k in nxt.items())
                moved[d.deployment] = moved.get(d.deployment, 0) + gained
                cells[d.deployment] = nxt
                changed = True
        if not changed:
            converged = True
            break
        rounds += 1
    keep = dataclasses.replace(settings, hysteresis=1.0)
    final_fleet = FleetState(mods, keep, rtt=rtt)
    decisions = _keep_cycle(final_fleet, workloads, pols, cells, explain_all=explain_all)
    stability = {d.deployment: d.stability for d in (plan.placements if plan else ())}
    out = []
    for d in decisions:
        n = moved.get(d.deployment, 0)
        how = f"moved {n} replica(s) by rebalancing; " if n else "stays where it was first placed; "
        why = stability.get(d.deployment, "")
        out.append(dataclasses.replace(d, stability=how + (why or "no fleet plan")))
    pool_free, _ = free_after(final_fleet, out)
    notes = [
        f"incremental placement in operator order, then {rounds} rebalance round(s) "
        f"(hysteresis {settings.hysteresis:.0%}, disruption budget {disruption_budget})"
        + ("" if converged else f"; still moving after {max_rounds} rounds")
    ]
    result = FleetDecision(
        placements=tuple(sorted(out, key=lambda d: d.deployment)),
        modules=module_usage(final_fleet, pool_free),
        total_cost=sum(d.cost for d in out),
        solver="operator",
        lower_bound=plan.lower_bound if plan else None,
        notes=tuple(notes),
    )
    return Convergence(result, first, moved, rounds, converged)


__all__ = [
    "Cells",
    "Convergence",
    "as_current",
    "cells_of",
    "converge",
    "operator_order",
    "place_incremental",
    "step_towards",
]
