"""Latency and carbon of a cascade, per tier and blended, against the largest tier alone. Pure.

For one tier serving demand d_r (requests/s from region r) with weights w_rm (the share of
region r's requests module m takes):

* mean RTT = sum_r d_r sum_m w_rm RTT(r, m) / sum_r d_r (request-weighted, so a busy region
  counts more than a quiet one);
* gCO2e/h = sum over the modules the tier holds GPUs on of GPUs x powerW x pue x intensity /
  1000 (the brief's `status.carbon` rule: every GPU held draws its board power, busy or not);
* gCO2e per 1,000 requests = gCO2e/h / (requests/h) x 1000, so rounding up to whole replicas
  and headroom are paid for in the figure.

Blended figures add the tiers' requests and grams and weigh their mean RTTs by requests. The
what-if baseline serves the router's whole demand with its largest tier (the last one), placed
by that tier's own rules by the same engine; `aifactoryctl place` and the operator's status
both report it, so a cascade's saving is always stated against something the fleet could do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aifactory.api import AIFactoryModule, InferenceDeployment, ModulePlacement
from aifactory.placement import Decision, FleetState, PlacementSettings
from aifactory.placement.accounting import grams_per_hour
from aifactory.placement.geo import rtt_ms

from .tiers import SOURCE_SPEC, RouterView, TierDemand, apply, tier_headroom

#: region -> module -> share of the region's requests, 0..1
Weights = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Figures:
    """Requests served, request-weighted mean RTT (ms) and gCO2e/h of one way of serving."""

    requests_per_second: float
    mean_rtt_ms: float | None
    grams_per_hour: float

    @property
    def grams_per_1000_requests(self) -> float | None:
        """gCO2e per 1,000 requests (None without requests)."""
        if self.requests_per_second <= 0:
            return None
        return self.grams_per_hour / (self.requests_per_second * 3600.0) * 1000.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: requestsPerSecond, meanRttMs, gramsPerHour, gramsPer1000Requests."""
        per_k = self.grams_per_1000_requests
        return {
            "requestsPerSecond": round(self.requests_per_second, 3),
            "meanRttMs": None if self.mean_rtt_ms is None else round(self.mean_rtt_ms, 2),
            "gramsPerHour": round(self.grams_per_hour, 2),
            "gramsPer1000Requests": None if per_k is None else round(per_k, 4),
        }


def mean_rtt_ms(
    demand: Mapping[str, float], weights: Weights, rtt: Callable[[str, str], float]
) -> float | None:
    """Request-weighted mean RTT over the regions that have routes (None: none has)."""
    total = 0.0
    weighted = 0.0
    for region, rps in demand.items():
        targets = {m: w for m, w in (weights.get(region) or {}).items() if w > 0}
        wsum = sum(targets.values())
        if rps <= 0 or wsum <= 0:
            continue
        total += rps
        weighted += rps * sum(w / wsum * rtt(region, m) for m, w in targets.items())
    return weighted / total if total > 0 else None


def region_rtt_ms(region: str, weights: Weights, rtt: Callable[[str, str], float]) -> float | None:
    """Expected RTT of one region's requests under `weights` (None without routes)."""
    targets = {m: w for m, w in (weights.get(region) or {}).items() if w > 0}
    wsum = sum(targets.values())
    if wsum <= 0:
        return None
    return sum(w / wsum * rtt(region, m) for m, w in targets.items())


def blend(figures: Iterable[Figures]) -> Figures:
    """Several tiers as one: requests and grams add, mean RTTs weigh by requests."""
    items = list(figures)
    rps = sum(f.requests_per_second for f in items)
    timed = [f for f in items if f.mean_rtt_ms is not None and f.requests_per_second > 0]
    timed_rps = sum(f.requests_per_second for f in timed)
    mean = (
        sum(f.requests_per_second * (f.mean_rtt_ms or 0.0) for f in timed) / timed_rps
        if timed_rps > 0
        else None
    )
    return Figures(rps, mean, sum(f.grams_per_hour for f in items))


# ----------------------------------------------------------------------- from engine decisions


def decision_weights(decision: Decision) -> dict[str, dict[str, float]]:
    """region -> module -> share of the region's replicas (how a decision routes)."""
    counts: dict[str, dict[str, int]] = {}
    for a in decision.assignments:
        for region, n in a.regions.items():
            if n > 0:
                counts.setdefault(region, {})[a.module] = n
    return {r: {m: n / sum(mods.values()) for m, n in mods.items()} for r, mods in counts.items()}


def decision_figures(fleet: FleetState, decision: Decision, demand: Mapping[str, float]) -> Figures:
    """Figures of an engine decision serving `demand` (RTTs as the engine estimated them)."""
    latency = {(r, a.module): ms for a in decision.assignments for r, ms in a.latency_ms.items()}

    def rtt(region: str, module: str) -> float:
        return latency.get((region, module), 0.0)

    return Figures(
        sum(demand.values()),
        mean_rtt_ms(demand, decision_weights(decision), rtt),
        grams_per_hour(fleet, decision),
    )


def largest_tier_what_if(view: RouterView, largest: InferenceDeployment) -> InferenceDeployment:
    """The largest tier placed for the router's whole demand (share 1), nothing running."""
    router = view.router
    regions = tuple(
        r.model_copy(update={"requests_per_second": view.rps[r.name]})
        for r in router.spec.demand.regions
    )
    tier = TierDemand(
        router=router.ref,
        deployment=largest.ref,
        share=1.0,
        share_source=SOURCE_SPEC,
        headroom=tier_headroom(largest, router),
        regions=regions,
    )
    return apply(largest, tier).model_copy(update={"status": None})


# ----------------------------------------------------------------------- from API objects


@dataclass(frozen=True, slots=True)
class ModuleFacts:
    """What the figures need of a module: where it is and what a GPU there emits."""

    latitude: float
    longitude: float
    pue: float
    carbon_intensity: float
    power_w: Mapping[str, float]


def module_facts(modules: Iterable[AIFactoryModule]) -> dict[str, ModuleFacts]:
    """Module name -> facts, with the carbon intensity placement uses (live when known)."""
    return {
        m.name: ModuleFacts(
            m.spec.location.latitude,
            m.spec.location.longitude,
            m.spec.energy.pue,
            m.effective_carbon_intensity(),
            {p.model: p.power_w for p in m.spec.capacity.gpus},
        )
        for m in modules
    }


def placement_grams_per_hour(
    placements: Sequence[ModulePlacement],
    gpus_per_replica: int,
    facts: Mapping[str, ModuleFacts],
) -> float:
    """gCO2e/h of a deployment's placements: GPUs per pool (status.placements[].gpus, else
    replicas x gpusPerReplica on the module's lowest-power pool) x powerW x pue x intensity."""
    total = 0.0
    for p in placements:
        f = facts.get(p.module)
        if f is None or p.replicas <= 0 or not f.power_w:
            continue
        gpus = p.gpus or {min(f.power_w, key=lambda k: f.power_w[k]): p.replicas * gpus_per_replica}
        watts = sum(n * f.power_w.get(model, min(f.power_w.values())) for model, n in gpus.items())
        total += watts * f.pue * f.carbon_intensity / 1000.0
    return total


def geo_rtt(
    router_regions: Mapping[str, tuple[float, float]],
    facts: Mapping[str, ModuleFacts],
    settings: PlacementSettings,
) -> Callable[[str, str], float]:
    """RTT(region, module) by the placement model's formula, for status figures."""

    def rtt(region: str, module: str) -> float:
        lat, lon = router_regions[region]
        f = facts[module]
        return rtt_ms(lat, lon, f.latitude, f.longitude, settings)

    return rtt


__all__ = [
    "Figures",
    "ModuleFacts",
    "Weights",
    "blend",
    "decision_figures",
    "decision_weights",
    "geo_rtt",
    "largest_tier_what_if",
    "mean_rtt_ms",
    "module_facts",
    "placement_grams_per_hour",
    "region_rtt_ms",
]
