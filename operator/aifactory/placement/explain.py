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

from aifactory.placement.framework import BoolArray, Code, Status
from aifactory.placement.rtt import MEASURED, MODEL
from aifactory.placement.scores import ScoreTerm, carbon, latency, normalize
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
