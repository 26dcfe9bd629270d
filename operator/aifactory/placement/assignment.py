"""Select and assign replicas for one deployment against the fleet as it is (incremental mode).

Used on every create/update, so it must take milliseconds on 10,000 modules. The work is:

1. prune: per demand region keep the T + k cheapest feasible modules (T replicas, k = spread).
   This loses nothing: if a replica of region r sat on a module outside r's T cheapest, one of
   those T modules (each with room for at least one replica, holding at most T-1 others) has
   room, and moving the replica there is no dearer;
2. greedy: fill (region, module) pairs cheapest first, as many replicas as fit;
3. spread: while fewer than min(minModules, T) distinct modules are used, move the replica
   whose move to an unused module costs least (a shortfall costs 1000, any move far less);
4. improve: single moves to cheaper modules with room and pairwise swaps between regions
   (the two-cycles the greedy can miss when capacity binds).

The same functions serve the sequential fleet mode (`place_sequential`), and the cost and
current-placement checks are shared with the fleet-wide optimiser.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aifactory.placement.cycle import prepare
from aifactory.placement.explain import availability_message, explain_modules, module_status
from aifactory.placement.filters import sovereignty
from aifactory.placement.framework import FloatArray, IntArray
from aifactory.placement.model import (
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    unplaced_penalty,
)
from aifactory.placement.result import (
    Assignment,
    Decision,
    FleetDecision,
    ModuleUsage,
    Preemption,
)
from aifactory.placement.state import FleetState, WorkloadState

#: (region index, module index) -> replicas.
Alloc = dict[tuple[int, int], int]
#: module index -> [(pool index, replicas)].
PoolParts = dict[int, list[tuple[int, int]]]

_IMPROVE_EPS = 1e-9


def tiebreak(n: int) -> FloatArray:
    """A tiny cost that grows with module index (= name order): among equal costs the module
    that sorts first wins, in every solver, so output never depends on array order quirks."""
    return _tiebreak(n)


@functools.lru_cache(maxsize=8)
def _tiebreak(n: int) -> FloatArray:
    out: FloatArray = np.arange(n, dtype=np.float64) * (1e-9 / max(n, 1))
    out.flags.writeable = False
    return out


def stickiness_bonus(fleet: FleetState, ws: WorkloadState) -> FloatArray | None:
    """Cost bonus on (region, module) pairs the deployment uses now: a small preference that
    breaks ties towards not moving anything."""
    wl = ws.workload
    if not wl.current or fleet.settings.stickiness <= 0:
        return None
    bonus = np.zeros((len(ws.region_names), fleet.n))
    regions = {n: r for r, n in enumerate(ws.region_names)}
    for a in wl.current:
        m = fleet.index.get(a.module)
        if m is None:
            continue
        if ws.has_demand:
            for name, k in a.regions.items():
                if name in regions and k > 0:
                    bonus[regions[name], m] = fleet.settings.stickiness
        elif a.replicas > 0:
            bonus[0, m] = fleet.settings.stickiness
    return bonus


def deployment_cost(
    fleet: FleetState, ws: WorkloadState, alloc: Mapping[tuple[int, int], int]
) -> float:
    """The brief's cost of one deployment's placement.

    Sum of per-replica costs, plus the unplaced penalty (`model.unplaced_penalty`: 1000 per
    unplaced replica, 10,000 for one below the guaranteed count) and 1000 per distinct module
    short of min(minModules, total).
    """
    s = fleet.settings
    placed = 0
    total = 0.0
    modules: set[int] = set()
    for (r, m), k in alloc.items():
        if k > 0:
            placed += k
            total += k * float(ws.cost[r, m])
            modules.add(m)
    total += unplaced_penalty(s, ws.total, ws.guaranteed, placed)
    total += s.spread_cost * max(0, ws.spread - len(modules))
    return total


def assign_one(
    fleet: FleetState,
    ws: WorkloadState,
    *,
    capacity: IntArray | None = None,
    bonus: FloatArray | None = None,
) -> Alloc:
    """Assign one deployment's replicas to modules: prune, greedy, spread, improve.

    `capacity` is replicas that fit per module (defaults to what `prepare` computed).
    """
    total = ws.total
    if total == 0 or fleet.n == 0:
        return {}
    cap_all = ws.capacity if capacity is None else capacity
    feasible_all = ws.feasible & (cap_all > 0)[None, :]
    keep = total + ws.spread
    tb = tiebreak(fleet.n)
    chosen: set[int] = set()
    for r in range(len(ws.region_names)):
        if ws.demand[r] <= 0:
            continue
        idx = np.flatnonzero(feasible_all[r])
        if len(idx) > keep:
            row = ws.cost[r, idx] + tb[idx]
            idx = idx[np.argpartition(row, keep - 1)[:keep]]
        chosen.update(idx.tolist())
    if bonus is not None:  # the running modules stay candidates, or stickiness means nothing
        chosen.update(np.flatnonzero((bonus > 0).any(axis=0) & feasible_all.any(axis=0)).tolist())
    if not chosen:
        return {}
    # From here on the problem is small: only the pruned candidate modules.
    cand = np.array(sorted(chosen), np.int64)
    cost = ws.cost[:, cand] + tb[cand][None, :]
    if bonus is not None:
        cost = cost - bonus[:, cand]
    feasible = feasible_all[:, cand]
    cap_left = cap_all[cand].astype(np.int64)
    order = np.argsort(np.where(feasible, cost, np.inf), axis=None, kind="stable")
    remaining = ws.demand.copy()
    alloc: Alloc = {}
    n_c = len(cand)
    for flat in order.tolist():
        r, m = divmod(flat, n_c)
        if not feasible[r, m]:
            break
        if remaining[r] <= 0 or cap_left[m] <= 0:
            continue
        k = int(min(remaining[r], cap_left[m]))
        alloc[(r, m)] = alloc.get((r, m), 0) + k
        remaining[r] -= k
        cap_left[m] -= k
    _spread(ws, cost, feasible, cap_left, alloc)
    _improve(ws, cost, feasible, cap_left, alloc, fleet.settings.improve_passes)
    return {(r, int(cand[m])): k for (r, m), k in sorted(alloc.items()) if k > 0}


def _module_counts(alloc: Alloc) -> dict[int, int]:
    counts: dict[int, int] = {}
    for (_, m), k in alloc.items():
        if k > 0:
            counts[m] = counts.get(m, 0) + k
    return counts


def _spread(
    ws: WorkloadState, cost: FloatArray, feasible: np.ndarray, cap_left: IntArray, alloc: Alloc
) -> None:
    """Move replicas to unused modules until min(minModules, total) distinct modules are used."""
    need = ws.spread
    while True:
        counts = _module_counts(alloc)
        if len(counts) >= need:
            return
        used = np.zeros(cap_left.shape[0], np.bool_)
        used[list(counts)] = True
        best: tuple[float, int, int, int] | None = None
        for r in range(len(ws.region_names)):
            open_ = feasible[r] & (cap_left > 0) & ~used
            if not open_.any():
                continue
            b = int(np.argmin(np.where(open_, cost[r], np.inf)))
            for (rr, a), k in sorted(alloc.items()):
                if rr != r or k <= 0 or counts[a] < 2:
                    continue
                cand = (float(cost[r, b] - cost[r, a]), r, a, b)
                if best is None or cand < best:
                    best = cand
        if best is None:
            return
        _, r, a, b = best
        _move(alloc, cap_left, r, a, b)


def _move(alloc: Alloc, cap_left: IntArray, r: int, a: int, b: int) -> None:
    alloc[(r, a)] -= 1
    if alloc[(r, a)] == 0:
        del alloc[(r, a)]
    alloc[(r, b)] = alloc.get((r, b), 0) + 1
    cap_left[a] += 1
    cap_left[b] -= 1


def _improve(
    ws: WorkloadState,
    cost: FloatArray,
    feasible: np.ndarray,
    cap_left: IntArray,
    alloc: Alloc,
    passes: int,
) -> None:
    """Single moves to cheaper modules with room, then pairwise swaps across regions.

    A move never drops the distinct-module count below the spread requirement.
    """
    need = ws.spread
    for _ in range(passes):
        changed = False
        for r, a in sorted(alloc):
            while alloc.get((r, a), 0) > 0:
                open_ = feasible[r] & (cap_left > 0)
                open_[a] = False
                if not open_.any():
                    break
                b = int(np.argmin(np.where(open_, cost[r], np.inf)))
                if cost[r, b] >= cost[r, a] - _IMPROVE_EPS:
                    break
                counts = _module_counts(alloc)
                after = len(counts) - (counts[a] == 1) + (counts.get(b, 0) == 0)
                if after < min(need, len(counts)):
                    break
                _move(alloc, cap_left, r, a, b)
                changed = True
        entries = sorted(alloc.items())
        for i, ((r1, a), k1) in enumerate(entries):
            for (r2, b), k2 in entries[i + 1 :]:
                if r1 == r2 or a == b or k1 <= 0 or k2 <= 0:
                    continue
                if alloc.get((r1, a), 0) <= 0 or alloc.get((r2, b), 0) <= 0:
                    continue
                if not (feasible[r1, b] and feasible[r2, a]):
                    continue
                gain = cost[r1, a] + cost[r2, b] - cost[r1, b] - cost[r2, a]
                if gain > _IMPROVE_EPS:
                    _move(alloc, cap_left, r1, a, b)
                    _move(alloc, cap_left, r2, b, a)
                    changed = True
        if not changed:
            return


@dataclass(slots=True)
class Outcome:
    """A solved deployment before it is turned into a Decision."""

    alloc: Alloc
    parts: PoolParts
    kept_current: bool = False
    stability: str = ""


def take_pools(
    fleet: FleetState,
    ws: WorkloadState,
    alloc: Alloc,
    pool_free: IntArray,
    power_free_w: FloatArray,
    prefer: Mapping[int, Mapping[str, int]] | None = None,
) -> tuple[Alloc, PoolParts]:
    """Reserve the GPUs and power of an allocation, pool by pool, in the given free arrays.

    `prefer` (module index -> GPU model -> replicas) accounts replicas that already run on the
    pools they run on. Replicas that no longer fit (only possible if the caller's capacity was
    stale) are dropped from the allocation and so count as unplaced: never oversubscribe.
    """
    per_module = _module_counts(alloc)
    parts: PoolParts = {}
    out: Alloc = dict(alloc)
    g = ws.workload.gpus_per_replica
    for m, k in sorted(per_module.items()):
        got = fleet.fit_pools(
            m, ws.eligible_pool, g, pool_free, power_free_w, k, (prefer or {}).get(m)
        )
        fitted = sum(n for _, n in got)
        fleet.consume(got, g, pool_free, power_free_w)
        parts[m] = got
        short = k - fitted
        for key in sorted((key for key in out if key[1] == m), reverse=True):
            if short <= 0:
                break
            d = min(short, out[key])
            out[key] -= d
            short -= d
    return {key: k for key, k in out.items() if k > 0}, parts


def current_allocation(fleet: FleetState, ws: WorkloadState) -> tuple[Alloc | None, str]:
    """The running placement as an allocation, or None and why it cannot simply be kept.

    It can be kept only if every module still exists and passes every hard rule for the regions
    it serves (a cordon keeps what runs), and it serves exactly the replicas now needed per
    region. Capacity is checked when it is reserved.
    """
    wl = ws.workload
    if not wl.current:
        return None, ""
    regions = {n: r for r, n in enumerate(ws.region_names)}
    alloc: Alloc = {}
    for a in wl.current:
        m = fleet.index.get(a.module)
        if m is None:
            return None, f"module {a.module} is gone"
        if ws.has_demand:
            if sum(a.regions.values()) != a.replicas:
                return None, f"current placement on {a.module} does not say which regions it serves"
            items = list(a.regions.items())
        else:
            items = [("", a.replicas)]
        for name, k in items:
            if name not in regions:
                return None, f"region {name} has no demand any more"
            if k > 0:
                alloc[(regions[name], m)] = alloc.get((regions[name], m), 0) + k
    got = np.zeros(len(ws.region_names), np.int64)
    for (r, _), k in alloc.items():
        got[r] += k
    if not np.array_equal(got, ws.demand):
        return None, "replicas needed per region changed"
    for (r, m), _ in sorted(alloc.items()):
        if not ws.static_ok[r, m]:
            statuses = module_status(ws, m)
            why = "; ".join(x for s in statuses for x in s.reasons) or (
                "module not ready" if not fleet.ready[m] else "a hard rule"
            )
            if not statuses and ws.has_demand:
                for rv in ws.region_verdicts:
                    if not rv.ok[r, m]:
                        why = rv.reasons[r]
                        break
            return None, f"current module {fleet.names[m]} breaks a hard rule: {why}"
    return alloc, ""


def fits(
    fleet: FleetState,
    ws: WorkloadState,
    alloc: Alloc,
    pool_free: IntArray,
    power_free_w: FloatArray,
) -> bool:
    """Whether an allocation fits the free arrays as they are (nothing is reserved)."""
    pf, pw = pool_free.copy(), power_free_w.copy()
    got, _ = take_pools(fleet, ws, alloc, pf, pw)
    return sum(got.values()) == sum(alloc.values())


def hysteresis(
    fleet: FleetState,
    ws: WorkloadState,
    new: Alloc,
    current: Alloc | None,
    why_not: str,
) -> tuple[bool, str]:
    """Keep the running placement unless the new one is cheaper by at least the hysteresis
    fraction, or the running one breaks a hard rule (`current` None with `why_not`)."""
    if not ws.workload.current:
        return False, ""
    if current is None:
        return False, f"replaced: {why_not}"
    old_cost = deployment_cost(fleet, ws, current)
    new_cost = deployment_cost(fleet, ws, new)
    h = fleet.settings.hysteresis
    if new_cost <= old_cost * (1.0 - h) - 1e-9:
        gain = 100.0 * (old_cost - new_cost) / old_cost if old_cost > 0 else 0.0
        return False, f"replaced: cost {old_cost:.3f} -> {new_cost:.3f} ({gain:.1f}% >= {h:.0%})"
    gain = 100.0 * (old_cost - new_cost) / old_cost if old_cost > 0 else 0.0
    return True, f"kept: a new placement would lower cost by {gain:.1f}% < {h:.0%}"


def running_pools(fleet: FleetState, ws: WorkloadState) -> dict[int, Mapping[str, int]]:
    """Module index -> GPU model -> replicas of the running placement, where the member said."""
    out: dict[int, Mapping[str, int]] = {}
    for a in ws.workload.current:
        m = fleet.index.get(a.module)
        if m is not None and a.pools:
            out[m] = a.pools
    return out


def kept_allocation(fleet: FleetState, ws: WorkloadState) -> tuple[Alloc, list[str]]:
    """The part of the running placement that may stay, trimmed to what each region needs.

    Cells (region, module) stay when the module exists and passes every hard rule for that
    region (a cordon, or NotReady within the toleration, keeps what runs; a drain, NotReady
    past it, a policy, an energy or latency rule does not). A region that needs fewer replicas
    loses them from its dearest modules first. Returns the allocation and, in words, what was
    dropped (empty when the running placement stays whole).
    """
    wl = ws.workload
    regions = {n: r for r, n in enumerate(ws.region_names)}
    alloc: Alloc = {}
    notes: list[str] = []
    for a in wl.current:
        m = fleet.index.get(a.module)
        if m is None:
            notes.append(f"module {a.module} is gone")
            continue
        if ws.has_demand:
            if sum(a.regions.values()) != a.replicas:
                notes.append(f"current placement on {a.module} does not say which regions")
                continue
            items = list(a.regions.items())
        else:
            items = [("", a.replicas)]
        for name, k in items:
            r = regions.get(name)
            if r is None:
                notes.append(f"region {name} has no demand any more")
                continue
            if k <= 0:
                continue
            if not ws.static_ok[r, m]:
                statuses = module_status(ws, m)
                why = "; ".join(x for st in statuses for x in st.reasons) or (
                    "module not ready"
                    if not fleet.ready[m]
                    else "module draining"
                    if fleet.draining[m]
                    else "a hard rule"
                )
                if not statuses and ws.has_demand:
                    for rv in ws.region_verdicts:
                        if not rv.ok[r, m]:
                            why = rv.reasons[r]
                            break
                notes.append(f"current module {fleet.names[m]} breaks a hard rule: {why}")
                continue
            alloc[(r, m)] = alloc.get((r, m), 0) + k
    changed = "replicas needed per region changed"
    for r in range(len(ws.region_names)):
        have = sum(k for (rr, _), k in alloc.items() if rr == r)
        surplus = have - int(ws.demand[r])
        if surplus < 0 and not notes:
            notes.append(changed)
        if surplus <= 0:
            continue
        notes.append(changed)
        cells = sorted(((float(ws.cost[r, m]), m) for (rr, m) in alloc if rr == r), reverse=True)
        for _, m in cells:
            if surplus <= 0:
                break
            d = min(surplus, alloc[(r, m)])
            alloc[(r, m)] -= d
            surplus -= d
            if alloc[(r, m)] == 0:
                del alloc[(r, m)]
    return alloc, list(dict.fromkeys(notes))


def repair(
    fleet: FleetState,
    ws: WorkloadState,
    kept: Alloc,
    pool_free: IntArray,
    power_free_w: FloatArray,
) -> Alloc:
    """The kept cells, plus the missing replicas placed on what is left (pure; copies)."""
    pf, pw = pool_free.copy(), power_free_w.copy()
    kept_fit, _ = take_pools(fleet, ws, kept, pf, pw, running_pools(fleet, ws))
    missing = ws.demand.copy()
    for (r, _), k in kept_fit.items():
        missing[r] -= k
    missing = np.maximum(missing, 0)
    if missing.sum() == 0:
        return dict(kept_fit)
    cap, _ = fleet.capacity(ws.eligible_pool, ws.workload.gpus_per_replica, pf, pw)
    part = ws.replace(demand=missing)
    fill = assign_one(fleet, part, capacity=cap)
    out = dict(kept_fit)
    for key, k in fill.items():
        out[key] = out.get(key, 0) + k
    return out


def solve_one(
    fleet: FleetState,
    ws: WorkloadState,
    pool_free: IntArray,
    power_free_w: FloatArray,
) -> Outcome:
    """Place one deployment on the free arrays and reserve what it takes (hysteresis applied).

    A running placement is never thrown away wholesale: what may stay is kept, what must go
    (a module gone, a rule broken, fewer replicas needed) is dropped, and missing replicas are
    added around the rest. That repaired placement is the baseline a fresh solve must beat by
    the hysteresis fraction, so a cordon or a small demand change moves nothing that runs.
    """
    wl = ws.workload
    # the unbiased optimum: stickiness must not hide a saving the hysteresis would accept
    # (the hysteresis comparison below is what keeps the running placement)
    fresh = assign_one(fleet, ws)
    prefer = running_pools(fleet, ws)
    if not wl.current:
        chosen, parts = take_pools(fleet, ws, fresh, pool_free, power_free_w, prefer)
        return Outcome(chosen, parts, False, "")
    kept, notes = kept_allocation(fleet, ws)
    whole = not notes and fits(fleet, ws, kept, pool_free, power_free_w)
    baseline = kept if whole else repair(fleet, ws, kept, pool_free, power_free_w)
    keep, stability = hysteresis(fleet, ws, fresh, baseline, "")
    if not whole:
        why = "; ".join(notes) or "the running placement no longer fits"
        if keep:
            moved = sum(baseline.values()) - sum(
                min(k, baseline.get(key, 0)) for key, k in kept.items()
            )
            stability = (
                f"repaired: kept {sum(kept.values())} running replicas, placed {moved} ({why})"
            )
        else:
            stability = f"replaced: {why}; {stability.removeprefix('replaced: ')}"
    chosen = baseline if keep else fresh
    chosen, parts = take_pools(fleet, ws, chosen, pool_free, power_free_w, prefer)
    return Outcome(chosen, parts, keep and whole, stability)


def build_decision(
    fleet: FleetState,
    ws: WorkloadState,
    outcome: Outcome,
    *,
    full: bool | None = None,
    preemptions: tuple[Preemption, ...] = (),
    explain: bool = True,
) -> Decision:
    """Turn a solved allocation into the Decision the operator and CLI read.

    Without `explain`, `explanation`, `message` and `audit` stay empty: the simulator replays
    thousands of fleet solves and reads only the placements, and the explanations are a
    sixth of a small fleet's solve."""
    alloc, parts = outcome.alloc, outcome.parts
    if full is None:
        full = fleet.n <= fleet.settings.explain_all_up_to
    by_module: dict[int, dict[int, int]] = {}
    for (r, m), k in sorted(alloc.items()):
        by_module.setdefault(m, {})[r] = k
    g = ws.workload.gpus_per_replica
    assignments: list[Assignment] = []
    audit: list[str] = []
    worst: dict[str, float] = {}
    weighted_ci = 0.0
    placed = 0
    for m, regions in sorted(by_module.items(), key=lambda kv: fleet.names[kv[0]]):
        count = sum(regions.values())
        gpus: dict[str, int] = {}
        for p, n in parts.get(m, []):
            model = fleet.pool_model_name[p]
            gpus[model] = gpus.get(model, 0) + n * g
        lat: dict[str, float] = {}
        if ws.rtt is not None:
            for r in regions:
                name = ws.region_names[r]
                lat[name] = float(ws.rtt[r, m])
                worst[name] = max(worst.get(name, 0.0), lat[name])
        ci = float(fleet.carbon[m])
        weighted_ci += ci * count
        placed += count
        assignments.append(
            Assignment(
                module=fleet.names[m],
                replicas=count,
                regions={ws.region_names[r]: k for r, k in regions.items()}
                if ws.has_demand
                else {},
                gpus=gpus,
                latency_ms=lat,
                carbon_intensity=ci,
            )
        )
        if explain:
            audit.extend(sovereignty.audit_findings(fleet, ws, m))
    unplaced_regions: dict[str, int] = {}
    for r, name in enumerate(ws.region_names):
        got = sum(k for (rr, _), k in alloc.items() if rr == r)
        if got < ws.demand[r]:
            unplaced_regions[name] = int(ws.demand[r] - got)
    if not explain:
        return Decision(
            deployment=ws.key,
            replicas=ws.total,
            unplaced_replicas=ws.total - placed,
            assignments=tuple(assignments),
            explanation={},
            cost=deployment_cost(fleet, ws, alloc),
            latency_ms=dict(sorted(worst.items())),
            carbon_intensity=weighted_ci / placed if placed else None,
            unplaced_regions=unplaced_regions,
            kept_current=outcome.kept_current,
            stability=outcome.stability,
            priority=ws.workload.priority,
            preemptions=preemptions,
        )
    message = availability_message(fleet, ws)
    if placed < ws.total:
        message = f"{ws.total - placed}/{ws.total} replicas unplaced; {message}"
        # Allowed modules exist, but their room is used up (by this deployment or others).
        crowded = [
            name
            for r, name in enumerate(ws.region_names)
            if name in unplaced_regions and ws.static_ok[r].any()
        ]
        if crowded and ws.has_demand:
            message += f" Allowed modules are full for: {', '.join(crowded)}."
        elif crowded:
            message += " Allowed modules are full."
    explanation = explain_modules(
        fleet, ws, alloc, full=full, alternatives=fleet.settings.explain_alternatives
    )
    for pre in preemptions:
        line = f"displaces {pre.replicas} of {pre.deployment} (priority {pre.priority})"
        explanation[pre.module] = f"{explanation.get(pre.module, 'selected')}; {line}"
    if preemptions:
        who = ", ".join(f"{x.replicas} of {x.deployment} on {x.module}" for x in preemptions)
        message = f"{message} Preempted lower-priority replicas: {who}."
    return Decision(
        deployment=ws.key,
        replicas=ws.total,
        unplaced_replicas=ws.total - placed,
        assignments=tuple(assignments),
        explanation=explanation,
        cost=deployment_cost(fleet, ws, alloc),
        latency_ms=dict(sorted(worst.items())),
        carbon_intensity=weighted_ci / placed if placed else None,
        message=message,
        unplaced_regions=unplaced_regions,
        audit=tuple(audit),
        kept_current=outcome.kept_current,
        stability=outcome.stability,
        priority=ws.workload.priority,
        preemptions=preemptions,
    )


def _fleet_state(
    modules: FleetState | Iterable[ModuleView], settings: PlacementSettings | None
) -> FleetState:
    if isinstance(modules, FleetState):
        return modules
    return FleetState(modules, settings)


def place_one(
    workload: WorkloadView,
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    explain_all: bool | None = None,
    running: Sequence[WorkloadView] = (),
) -> Decision:
    """Place one deployment against the fleet as it is now (incremental mode).

    The modules' pools must already count the GPUs of everything else (`GpuPool.allocated`).
    Pass a prebuilt `FleetState` to share the per-cycle precomputation across deployments.

    `running`: the other deployments with their running placements (`current`) and priorities,
    whose GPUs those counts include. When replicas do not fit, running replicas of
    lower-priority ones may be displaced (`priority.preempt`; never with preemption policy
    Never); `Decision.preemptions` says whose and where, and the caller re-places them.
    """
    from aifactory.placement.priority import preempt  # priority builds on this module

    fleet = _fleet_state(modules, settings)
    pols = tuple(policies)
    ws = prepare(fleet, workload, pols)
    outcome = solve_one(fleet, ws, fleet.pool_free.copy(), fleet.power_free_w.copy())
    preemptions: tuple[Preemption, ...] = ()
    if running:
        ws, outcome, preemptions = preempt(fleet, ws, outcome, running, pols)
    return build_decision(fleet, ws, outcome, full=explain_all, preemptions=preemptions)


def place_against(
    fleet: FleetState,
    workload: WorkloadView,
    policies: Iterable[PolicyView],
    pool_free: IntArray,
    power_free_w: FloatArray,
    *,
    explain_all: bool | None = None,
    running: Sequence[WorkloadView] = (),
) -> tuple[Decision, WorkloadState]:
    """`place_one` against explicit free arrays (not modified), with the workload state.

    The operator's placement cycle keeps one FleetState and its own free arrays (what every
    other deployment holds); the state lets it ask which running cells a policy forbids.
    `running` enables preemption of lower-priority deployments, as in `place_one`.
    """
    from aifactory.placement.priority import preempt  # priority builds on this module

    pols = tuple(policies)
    ws = prepare(fleet, workload, pols, pool_free=pool_free, power_free_w=power_free_w)
    outcome = solve_one(fleet, ws, pool_free.copy(), power_free_w.copy())
    preemptions: tuple[Preemption, ...] = ()
    if running:
        ws, outcome, preemptions = preempt(
            fleet, ws, outcome, running, pols, pool_free=pool_free, power_free_w=power_free_w
        )
    return build_decision(fleet, ws, outcome, full=explain_all, preemptions=preemptions), ws


def module_usage(fleet: FleetState, pool_free: IntArray) -> tuple[ModuleUsage, ...]:
    """GPUs used (others' plus this decision's) and total per module."""
    free = np.bincount(fleet.pool_module, weights=pool_free, minlength=fleet.n).astype(np.int64)
    return tuple(
        ModuleUsage(name, int(fleet.gpus_total[i]), int(fleet.gpus_total[i] - free[i]))
        for i, name in enumerate(fleet.names)
    )


def place_sequential(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    explain_all: bool | None = None,
) -> FleetDecision:
    """Place deployments one after another in key order, each with `place_one`'s algorithm on
    what the earlier ones left: the incremental mode applied to a whole fleet."""
    fleet = _fleet_state(modules, settings)
    pols = tuple(policies)
    pool_free = fleet.pool_free.copy()
    power_free = fleet.power_free_w.copy()
    decisions: list[Decision] = []
    for wl in sorted(workloads, key=lambda w: w.key):
        ws = prepare(fleet, wl, pols, pool_free=pool_free, power_free_w=power_free)
        outcome = solve_one(fleet, ws, pool_free, power_free)
        decisions.append(build_decision(fleet, ws, outcome, full=explain_all))
    return FleetDecision(
        placements=tuple(decisions),
        modules=module_usage(fleet, pool_free),
        total_cost=sum(d.cost for d in decisions),
        solver="sequential",
    )
