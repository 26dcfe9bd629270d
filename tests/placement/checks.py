"""An independent referee for placement decisions.

Written from the brief's wording with plain scalar Python (no engine internals), so a bug in
the engine's vectorised filters cannot hide itself: every replica must sit on a module that
every hard rule allows, and no pool or power budget may be oversubscribed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from aifactory.api.jurisdictions import GROUPS, expand
from aifactory.placement import (
    Decision,
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    bind,
)
from aifactory.placement.geo import rtt_ms


def module_allowed(
    m: ModuleView, wl: WorkloadView, enforce: Sequence[PolicyView], *, kept: bool = False
) -> list[str]:
    """Module-level hard rules `m` breaks for `wl` (a kept placement may stay on a cordon)."""
    out: list[str] = []
    if not m.ready or not (m.schedulable or kept):
        out.append("not ready/schedulable")
    if wl.placement_modules and m.name not in wl.placement_modules:
        out.append("not in allow-list")
    if wl.module_selector is not None and not wl.module_selector.matches(m.labels):
        out.append("selector")
    if wl.min_renewable_share is not None and m.renewable_share < wl.min_renewable_share - 1e-9:
        out.append("renewable")
    if wl.max_carbon_intensity is not None and m.carbon_intensity > wl.max_carbon_intensity + 1e-9:
        out.append("carbon")
    if wl.allowed_sources and not m.sources <= wl.allowed_sources:
        out.append("sources")
    tags = {m.country} | {g for g, members in GROUPS.items() if m.country in members}
    tags |= set(m.jurisdictions)
    for p in enforce:
        if p.allowed_jurisdictions and not tags & set(p.allowed_jurisdictions):
            out.append(f"{p.name}: jurisdiction")
        if m.country in expand(p.denied_countries):
            out.append(f"{p.name}: denied")
        if p.operator_countries and m.operator_country not in expand(p.operator_countries):
            out.append(f"{p.name}: operator")
        if m.operator_country and m.operator_country in expand(p.denied_operator_countries):
            out.append(f"{p.name}: denied operator")
        if not set(p.required_certifications) <= m.certifications:
            out.append(f"{p.name}: certifications")
        if p.require_air_gapped and not m.air_gapped:
            out.append(f"{p.name}: air gap")
    return out


def residency_ok(m: ModuleView, country: str | None, enforce: Sequence[PolicyView]) -> bool:
    for p in enforce:
        if p.data_residency != "SameJurisdictionAsDemand":
            continue
        if country is None:
            return False
        if m.country == country:
            continue
        shared = [
            g
            for g in p.allowed_jurisdictions
            if g in GROUPS
            and country in GROUPS[g]
            and (m.country in GROUPS[g] or g in m.jurisdictions)
        ]
        if not shared:
            return False
    return True


def violations(
    decisions: Iterable[Decision],
    modules: Sequence[ModuleView],
    workloads: Sequence[WorkloadView],
    policies: Sequence[PolicyView],
    settings: PlacementSettings | None = None,
) -> list[str]:
    """Every hard rule a set of decisions breaks (empty when all hold)."""
    s = settings or PlacementSettings()
    by_name = {m.name: m for m in modules}
    by_key = {w.key: w for w in workloads}
    used: dict[tuple[str, str], int] = {}
    out: list[str] = []
    for d in decisions:
        wl = by_key[d.deployment]
        enforce = [p for p in bind(wl, policies).enforce]
        if bind(wl, policies).missing and d.placed_replicas:
            out.append(f"{d.deployment}: placed despite a missing policy")
        if sum(a.replicas for a in d.assignments) + d.unplaced_replicas != wl.replicas:
            out.append(f"{d.deployment}: replica count")
        regions = {r.name: r for r in wl.regions}
        served: dict[str, int] = {}
        running = {c.module: c.replicas for c in wl.current}
        for a in d.assignments:
            m = by_name[a.module]
            # a cordon keeps what runs, also when the rest of the placement was repaired
            kept = d.kept_current or a.replicas <= running.get(m.name, 0)
            for why in module_allowed(m, wl, enforce, kept=kept):
                out.append(f"{d.deployment} on {m.name}: {why}")
            if sum(a.gpus.values()) != a.replicas * wl.gpus_per_replica:
                out.append(f"{d.deployment} on {m.name}: GPU count")
            for model, n in a.gpus.items():
                pool = next(p for p in m.pools if p.model == model)
                if wl.gpu_models and model not in wl.gpu_models:
                    out.append(f"{d.deployment} on {m.name}: model {model}")
                if pool.memory_gib < wl.min_gpu_memory_gib:
                    out.append(f"{d.deployment} on {m.name}: memory")
                used[(m.name, model)] = used.get((m.name, model), 0) + n
            if wl.regions:
                if sum(a.regions.values()) != a.replicas:
                    out.append(f"{d.deployment} on {m.name}: regions do not add up")
                for name, k in a.regions.items():
                    served[name] = served.get(name, 0) + k
                    r = regions[name]
                    rtt = rtt_ms(r.latitude, r.longitude, m.latitude, m.longitude, s)
                    if wl.max_latency_ms is not None and rtt > wl.max_latency_ms + 1e-6:
                        out.append(f"{d.deployment} on {m.name}: latency {rtt:.1f} for {name}")
                    if not residency_ok(m, r.country, enforce):
                        out.append(f"{d.deployment} on {m.name}: residency for {name}")
        for name, k in served.items():
            if k > regions[name].replicas:
                out.append(f"{d.deployment}: region {name} over-served")
    for m in modules:
        watts = 0.0
        for p in m.pools:
            n = used.get((m.name, p.model), 0)
            if n > p.free:
                out.append(f"{m.name}/{p.model}: {n} GPUs placed, {p.free} free")
            watts += (p.allocated + n) * p.power_w * m.pue
        others = sum(p.allocated * p.power_w * m.pue for p in m.pools)
        added = watts - others
        if added > 0 and watts > max(m.power_budget_kw * 1000.0, others) + 1e-3:
            out.append(f"{m.name}: power {watts:.0f} W > budget {m.power_budget_kw * 1000:.0f} W")
    return out


def spread_short(d: Decision, wl: WorkloadView) -> int:
    """Distinct modules short of min(minModules, replicas)."""
    need = min(wl.min_modules, wl.replicas)
    return max(0, need - len(d.assignments))


def brief_cost(
    d: Decision,
    wl: WorkloadView,
    modules: Sequence[ModuleView],
    settings: PlacementSettings | None = None,
) -> float:
    """The brief's cost of one decision, recomputed from scratch."""
    s = settings or PlacementSettings()
    by_name = {m.name: m for m in modules}
    regions = {r.name: r for r in wl.regions}
    limit = wl.max_latency_ms or s.latency_normaliser_ms
    total = 0.0
    for a in d.assignments:
        m = by_name[a.module]
        carbon = wl.carbon_weight * m.carbon_intensity * m.pue / s.carbon_normaliser
        if wl.regions:
            for name, k in a.regions.items():
                r = regions[name]
                rtt = rtt_ms(r.latitude, r.longitude, m.latitude, m.longitude, s)
                total += k * (wl.latency_weight * rtt / limit + carbon)
        else:
            total += a.replicas * carbon
    total += s.unplaced_cost * d.unplaced_replicas
    total += s.spread_cost * spread_short(d, wl)
    assert not math.isnan(total)
    return total
