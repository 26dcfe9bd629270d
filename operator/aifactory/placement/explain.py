"""Why each module was or was not used, in words a platform team can act on.

Two forms, after kube-scheduler: a line per module (the filter that rejected it with its reason,
or its cost per replica broken into score terms), and one aggregated message with counts sorted
by how many modules each reason hit:
"0/7 modules are available: 3 outside allowed jurisdictions EU,EEA, 2 insufficient H100."
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from aifactory.placement.framework import BoolArray, Code, FloatArray, IntArray, Status
from aifactory.placement.result import Decision
from aifactory.placement.rtt import MEASURED, MODEL
from aifactory.placement.scores import ScoreTerm, carbon, latency, normalize, reliability
from aifactory.placement.state import FleetState, WorkloadState

Alloc = Mapping[tuple[int, int], int]


def module_status(ws: WorkloadState, i: int) -> list[Status]:
    """Why module `i` cannot take any replica: the first module-level filter that failed, or
    else the per-region reasons when it may serve none of the regions. Empty when it may."""
    for v in ws.module_verdicts:
        if v.codes[i]:
            return [v.status(i)]
    if ws.feasible[:, i].any():
        return []
    out: list[Status] = []
    for r in range(len(ws.region_names)):
        for rv in ws.region_verdicts:
            if not rv.ok[r, i]:
                out.append(Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (rv.reasons[r],), rv.plugin))
                break
    return out


def region_exclusions(ws: WorkloadState, i: int) -> list[str]:
    """Reasons module `i` may not serve some regions (when it may serve others)."""
    out: list[str] = []
    for r in range(len(ws.region_names)):
        for rv in ws.region_verdicts:
            if not rv.ok[r, i]:
                out.append(rv.reasons[r])
                break
    return out


def score_terms(fleet: FleetState, ws: WorkloadState, r: int, i: int) -> list[ScoreTerm]:
    """The score of one replica serving region `r` on module `i`, term by term."""
    settings = fleet.settings
    out: list[ScoreTerm] = []
    if ws.rtt is not None:
        lat_norm = latency.normaliser(settings, ws.workload)
        raw = float(ws.rtt[r, i])
        measured = ws.rtt_measured is not None and bool(ws.rtt_measured[r, i])
        out.append(
            ScoreTerm(
                latency.NAME,
                raw,
                latency.UNIT,
                normalize(raw, lat_norm),
                float(ws.latency_cost[r, i]),
                MEASURED if measured else MODEL,
            )
        )
    raw_c = float(fleet.carbon[i] * fleet.pue[i])
    out.append(
        ScoreTerm(
            carbon.NAME,
            raw_c,
            carbon.UNIT + " x PUE",
            normalize(raw_c, carbon.normaliser(settings)),
            float(ws.carbon_cost[i]),
        )
    )
    if ws.workload.reliability_weight > 0:
        raw_r = float(reliability.raw(fleet)[i])
        out.append(
            ScoreTerm(
                reliability.NAME,
                100.0 * raw_r,
                reliability.UNIT,
                normalize(raw_r, reliability.normaliser(settings)),
                float(ws.reliability_cost[i]),
            )
        )
    return out


def describe_cost(fleet: FleetState, ws: WorkloadState, i: int, regions: Iterable[int]) -> str:
    """ "cost/replica eu-west 0.31 = Latency 12.3 ms [model] (score 88, 0.12) + Carbon ..." per
    region; the RTT is tagged [measured] when it came from the fleet's RTT table."""
    parts: list[str] = []
    for r in regions:
        terms = score_terms(fleet, ws, r, i)
        total = sum(t.weighted for t in terms)
        detail = " + ".join(
            f"{t.name} {t.raw:.1f} {t.unit}{f' [{t.source}]' if t.source else ''} "
            f"(score {t.normalized:.0f}, {t.weighted:.3f})"
            for t in terms
        )
        label = f"{ws.region_names[r]} " if ws.has_demand else ""
        parts.append(f"{label}{total:.3f} = {detail}")
    return "cost/replica " + "; ".join(parts)


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


def explain_modules(
    fleet: FleetState,
    ws: WorkloadState,
    alloc: Alloc,
    *,
    full: bool,
    alternatives: int = 5,
) -> dict[str, str]:
    """One line per module: chosen, feasible but not chosen, or rejected and why.

    With `full` false only the chosen modules and the `alternatives` cheapest feasible others
    are described (the aggregated message still counts every module): on a 10,000-module fleet
    a string per module would cost more than the placement itself.
    """
    served: dict[int, dict[int, int]] = {}
    for (r, m), k in alloc.items():
        if k > 0:
            served.setdefault(m, {})[r] = served.setdefault(m, {}).get(r, 0) + k
    if full:
        modules: list[int] = list(range(fleet.n))
    else:
        best = np.where(ws.feasible, ws.cost, np.inf).min(axis=0)
        want = min(fleet.n, alternatives + len(served))
        if want < fleet.n:  # partition first: a full sort of 10,000 costs is wasted work
            top = np.argpartition(best, want - 1)[:want] if want else np.zeros(0, np.int64)
            order = top[np.argsort(best[top], kind="stable")]
        else:
            order = np.argsort(best, kind="stable")
        others = [int(i) for i in order if np.isfinite(best[i]) and int(i) not in served]
        others = others[:alternatives]
        modules = sorted(set(served) | set(others))
    out: dict[str, str] = {}
    for i in modules:
        name = fleet.names[i]
        if i in served:
            by_region = served[i]
            count = sum(by_region.values())
            if ws.has_demand:
                where = ", ".join(f"{ws.region_names[r]}={k}" for r, k in sorted(by_region.items()))
                head = f"selected: {_replicas(count)} ({where})"
            else:
                head = f"selected: {_replicas(count)}"
            text = f"{head}; {describe_cost(fleet, ws, i, sorted(by_region))}"
        else:
            statuses = module_status(ws, i)
            if statuses:
                out[name] = "rejected: " + "; ".join(r for s in statuses for r in s.reasons)
                continue
            regions = [int(r) for r in np.flatnonzero(ws.feasible[:, i])]
            text = f"not selected: {describe_cost(fleet, ws, i, regions)}"
        excluded = region_exclusions(ws, i)
        if excluded:
            text += "; cannot serve: " + "; ".join(excluded)
        out[name] = text
    return out


def _module_level(fleet: FleetState, ws: WorkloadState) -> tuple[Counter[str], BoolArray]:
    """Counts under each module's first failing module-level filter, and which modules failed.

    Shared through the fleet cache by deployments whose verdicts all came from it.
    """
    cache_key = ("explain", ws.verdicts_key)
    if ws.verdicts_key is not None:
        hit = fleet.cache.get(cache_key)
        if hit is not None:
            return hit  # type: ignore[return-value]
    counts: Counter[str] = Counter()
    codes = np.stack([v.codes for v in ws.module_verdicts])
    failed = codes > 0
    any_failed: BoolArray = np.asarray(failed.any(axis=0), np.bool_)
    first = failed.argmax(axis=0)
    for f, v in enumerate(ws.module_verdicts):
        hit_f = any_failed & (first == f)
        if not hit_f.any():
            continue
        ids = np.bincount(v.reason_ids[hit_f], minlength=len(v.reasons))
        for rid, c in enumerate(ids.tolist()):
            if c:
                counts[v.reasons[rid]] += c
    if ws.verdicts_key is not None:
        fleet.cache[cache_key] = (counts, any_failed)
    return counts, any_failed


def reason_counts(fleet: FleetState, ws: WorkloadState) -> Counter[str]:
    """How many modules each reason ruled out, counted with vector operations.

    A module counts once under its first failing module-level filter; a module that passes
    those but may serve no region counts once under each region reason that stopped it.
    """
    if fleet.n == 0:
        return Counter()
    base, any_failed = _module_level(fleet, ws)
    counts = Counter(base)
    no_region = ~any_failed & ~ws.feasible_any
    if no_region.any():
        for r in range(len(ws.region_names)):
            for rv in ws.region_verdicts:
                c = int((no_region & ~rv.ok[r]).sum())
                if c:
                    counts[rv.reasons[r]] += c
    return counts


def availability_message(fleet: FleetState, ws: WorkloadState) -> str:
    """kube-scheduler style: "2/7 modules are available: 3 outside ..., 2 insufficient H100."."""
    available = int(ws.feasible_any.sum()) if fleet.n else 0
    counts = reason_counts(fleet, ws)
    head = f"{available}/{fleet.n} modules are available"
    if not counts:
        return head + "."
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return head + ": " + ", ".join(f"{c} {reason}" for reason, c in items) + "."


# ------------------------------------------------------------------------- shortfalls
#: (module, GPU model) -> deployment "namespace/name" -> GPUs it holds there.
Holders = Mapping[tuple[str, str], Mapping[str, int]]

#: Reason templates of `shortfalls`, as constants so tests and docs reuse them.
REASON_POOLS_FULL = "no free {models}: {usage}"
REASON_POWER = (
    "power budget: {used:.1f}/{budget:.1f} kW in use; one more replica needs {need:.1f} kW"
)
REASON_SPREAD = "slo.minModules {k}: moving it would leave {have} module(s)"
REASON_KEPT = "kept where it runs (saves {delta:.3f} per replica; {stability})"
REASON_STICKY = (
    "kept where it runs: moving saves {delta:.3f} per replica, no more than the {bonus} bonus "
    "the engine gives what runs (stickiness), so no plan proposes it"
)
REASON_UNTAKEN = "room for {room} more, {delta:.3f} cheaper per replica than {dearer}: not taken"


def holders_of(decisions: Iterable[Decision]) -> dict[tuple[str, str], dict[str, int]]:
    """Who holds which GPUs, from decisions' assignments (module, model -> deployment -> GPUs)."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for d in decisions:
        for a in d.assignments:
            for model, n in a.gpus.items():
                if n > 0:
                    slot = out.setdefault((a.module, model), {})
                    slot[d.deployment] = slot.get(d.deployment, 0) + n
    return out


def pool_of(fleet: FleetState, module: str, model: str) -> int | None:
    """The flat pool index of a module's GPU model, or None."""
    m = fleet.index.get(module)
    if m is None:
        return None
    for p in fleet.module_pools[m]:
        if fleet.pool_model_name[p] == model:
            return int(p)
    return None


def free_after(fleet: FleetState, decisions: Iterable[Decision]) -> tuple[IntArray, FloatArray]:
    """The fleet's free GPUs and power once every decision's GPUs are taken."""
    pool_free = fleet.pool_free.copy()
    power_free = fleet.power_free_w.copy()
    for d in decisions:
        for a in d.assignments:
            for model, n in a.gpus.items():
                p = pool_of(fleet, a.module, model)
                if p is None or n <= 0:
                    continue
                m = int(fleet.pool_module[p])
                pool_free[p] -= n
                power_free[m] -= n * float(fleet.pool_power_w[p]) * float(fleet.pue[m])
    return pool_free, power_free


def alloc_of(
    fleet: FleetState, ws: WorkloadState, decision: Decision
) -> dict[tuple[int, int], int]:
    """A decision's assignments as (region index, module index) -> replicas."""
    regions = {n: r for r, n in enumerate(ws.region_names)}
    out: dict[tuple[int, int], int] = {}
    for a in decision.assignments:
        m = fleet.index.get(a.module)
        if m is None:
            continue
        items = a.regions.items() if ws.has_demand and a.regions else [("", a.replicas)]
        for name, k in items:
            r = regions.get(name, 0)
            if k > 0:
                out[(r, m)] = out.get((r, m), 0) + k
    return out


def _usage(fleet: FleetState, p: int, free: int, holders: Holders) -> str:
    m = int(fleet.pool_module[p])
    module = fleet.names[m]
    model = fleet.pool_model_name[p]
    total = int(fleet.pool_count[p])
    used = total - free
    who = dict(holders.get((module, model), {}))
    ours = sum(who.values())
    parts = [f"{ref} {n}" for ref, n in sorted(who.items(), key=lambda kv: (-kv[1], kv[0]))]
    if used - ours > 0:
        parts.append(f"other workloads {used - ours}")
    return f"{model} {used}/{total} in use" + (f" ({', '.join(parts)})" if parts else "")


def _capacity_reason(
    fleet: FleetState,
    ws: WorkloadState,
    m: int,
    pool_free: IntArray,
    power_free_w: FloatArray,
    holders: Holders,
) -> str | None:
    """Why module `m` cannot take one more replica of this deployment, or None if it can."""
    g = ws.workload.gpus_per_replica
    idx = np.array([m], np.int64)
    cap, gpu_cap = fleet.capacity(ws.eligible_pool, g, pool_free, power_free_w, idx)
    if cap[m] > 0:
        return None
    pools = [p for p in fleet.module_pools[m] if ws.eligible_pool[p]]
    if gpu_cap[m] <= 0:
        models = ",".join(fleet.pool_model_name[p] for p in pools)
        usage = "; ".join(_usage(fleet, p, int(pool_free[p]), holders) for p in pools)
        return REASON_POOLS_FULL.format(models=models, usage=usage)
    cheapest = min((float(fleet.pool_power_w[p]) for p in pools if pool_free[p] >= g), default=0.0)
    budget = float(fleet.power_budget_w[m])
    return REASON_POWER.format(
        used=(budget - float(power_free_w[m])) / 1000.0,
        budget=budget / 1000.0,
        need=g * cheapest * float(fleet.pue[m]) / 1000.0,
    )


def shortfalls(
    fleet: FleetState,
    ws: WorkloadState,
    alloc: Alloc,
    pool_free: IntArray,
    power_free_w: FloatArray,
    *,
    holders: Holders | None = None,
    stability: str = "",
) -> dict[str, list[str]]:
    """Why a module got fewer replicas than it could: per module, one reason per region.

    A module "could" take a replica of region r when every hard rule allows it to serve r and
    it costs less per replica than a module some replica of r went to (or r has replicas that
    found no module). `pool_free`/`power_free_w` are the free capacity once every deployment's
    placement is taken (this one's included); `holders` says who holds the GPUs, so a full pool
    names the deployments in it. The first reason that applies is given: the pool is full (by
    whom), the power budget is used up, `slo.minModules` needs the dearer module, the running
    placement was kept (`stability`, the hysteresis rule), or the solver left it.
    """
    holders = holders or {}
    used: dict[int, int] = {}
    for (_, m), k in alloc.items():
        if k > 0:
            used[m] = used.get(m, 0) + k
    need = ws.spread
    out: dict[str, list[str]] = {}
    for r, name in enumerate(ws.region_names):
        want = int(ws.demand[r])
        if want <= 0:
            continue
        cells = {m: k for (rr, m), k in alloc.items() if rr == r and k > 0}
        placed = sum(cells.values())
        short = want - placed
        label = f"{name}: " if ws.has_demand else ""
        for m in range(fleet.n):
            if not ws.static_ok[r, m] or not fleet.schedulable[m]:
                continue
            cost = float(ws.cost[r, m])
            dearer = sorted(
                (a for a in cells if a != m and float(ws.cost[r, a]) > cost + 1e-9),
                key=lambda a: (-float(ws.cost[r, a]), fleet.names[a]),
            )
            if short <= 0 and not dearer:
                continue
            if short > 0:
                what = f"{label}{short} replica(s) found no module"
            else:
                k = sum(cells[a] for a in dearer)
                where = ",".join(fleet.names[a] for a in dearer)
                what = f"{label}{k} replica(s) on dearer {where}"
            why = _capacity_reason(fleet, ws, m, pool_free, power_free_w, holders)
            if why is None and short <= 0 and dearer:
                a = dearer[-1]  # the cheapest of the dearer ones: the move that would pay least
                after = len(used) - (used.get(a, 0) == 1) + (used.get(m, 0) == 0)
                delta = float(ws.cost[r, a]) - cost
                if after < min(need, sum(used.values())):
                    why = REASON_SPREAD.format(k=ws.workload.min_modules, have=after)
                elif stability.startswith(("kept", "repaired")):
                    stick = fleet.settings.stickiness
                    why = (
                        REASON_STICKY.format(delta=delta, bonus=stick)
                        if delta <= stick + 1e-12
                        else REASON_KEPT.format(delta=delta, stability=stability)
                    )
                else:
                    idx = np.array([m], np.int64)
                    room, _ = fleet.capacity(
                        ws.eligible_pool, ws.workload.gpus_per_replica, pool_free, power_free_w, idx
                    )
                    why = REASON_UNTAKEN.format(
                        room=int(room[m]), delta=delta, dearer=fleet.names[a]
                    )
            elif why is None:
                why = stability or "not taken"
            out.setdefault(fleet.names[m], []).append(f"{what}: {why}")
    return out
