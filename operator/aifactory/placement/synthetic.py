"""Seeded synthetic fleets, deployments and policies, for benchmarks and property tests.

Sites cluster around real cities so latency SLOs, jurisdictions and residency interact the way
they would in a real fleet; everything is drawn from one `random.Random(seed)`, so a seed names
an instance exactly.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from aifactory.api.jurisdictions import EEA
from aifactory.placement.model import (
    GpuPool,
    ModuleView,
    PolicyView,
    RegionDemand,
    Selector,
    WorkloadView,
)

#: (city, country, latitude, longitude, grid carbon intensity gCO2e/kWh)
CITIES: tuple[tuple[str, str, float, float, float], ...] = (
    ("reykjavik", "IS", 64.13, -21.90, 28),
    ("oslo", "NO", 59.91, 10.75, 30),
    ("stockholm", "SE", 59.33, 18.07, 40),
    ("helsinki", "FI", 60.17, 24.94, 80),
    ("dublin", "IE", 53.35, -6.26, 300),
    ("paris", "FR", 48.86, 2.35, 56),
    ("frankfurt", "DE", 50.11, 8.68, 380),
    ("amsterdam", "NL", 52.37, 4.90, 330),
    ("madrid", "ES", 40.42, -3.70, 150),
    ("milan", "IT", 45.46, 9.19, 330),
    ("warsaw", "PL", 52.23, 21.01, 700),
    ("vienna", "AT", 48.21, 16.37, 110),
    ("zurich", "CH", 47.38, 8.54, 40),
    ("london", "GB", 51.51, -0.13, 200),
    ("virginia", "US", 39.04, -77.49, 350),
    ("dallas", "US", 32.78, -96.80, 400),
    ("oregon", "US", 45.52, -122.68, 120),
    ("montreal", "CA", 45.50, -73.57, 30),
    ("sao-paulo", "BR", -23.55, -46.63, 90),
    ("singapore", "SG", 1.35, 103.82, 470),
    ("mumbai", "IN", 19.08, 72.88, 700),
    ("tokyo", "JP", 35.68, 139.69, 480),
    ("sydney", "AU", -33.87, 151.21, 600),
    ("johannesburg", "ZA", -26.20, 28.05, 850),
)

_EEA_CITIES = tuple(c for c in CITIES if c[1] in EEA)

#: (model, memory GiB, board power W)
GPU_MODELS: tuple[tuple[str, float, float], ...] = (
    ("H100", 80, 700),
    ("A100", 80, 400),
    ("L40S", 48, 350),
    ("L4", 24, 72),
)

_SOURCES = ("solar", "wind", "hydro", "geothermal", "nuclear", "grid", "gas")
_CERTS = ("ISO27001", "SOC2", "C5")


def random_module(rng: random.Random, name: str) -> ModuleView:
    """One module near a random city, with one or two GPU pools and a plausible energy mix."""
    _city, country, lat, lon, grid = rng.choice(CITIES)
    pools: list[GpuPool] = []
    for model, mem, power in rng.sample(GPU_MODELS, rng.choice((1, 1, 2))):
        count = rng.choice((8, 16, 32, 64))
        allocated = rng.randrange(0, count // 3 + 1)
        pools.append(GpuPool(model, count, mem, power, allocated))
    pue = round(rng.uniform(1.05, 1.5), 2)
    full_kw = sum(p.count * p.power_w for p in pools) * pue / 1000
    budget = round(full_kw * rng.uniform(0.6, 1.1), 1)
    sources = frozenset(rng.sample(_SOURCES, rng.randint(1, 3)))
    renewable = rng.choice((0.0, 0.2, 0.5, 0.8, 1.0))
    return ModuleView(
        name=name,
        country=country,
        latitude=lat + rng.uniform(-1.5, 1.5),
        longitude=lon + rng.uniform(-1.5, 1.5),
        pools=tuple(pools),
        power_budget_kw=budget,
        pue=pue,
        carbon_intensity=max(10.0, grid * rng.uniform(0.5, 1.3)),
        renewable_share=renewable,
        sources=sources,
        certifications=frozenset(c for c in _CERTS if rng.random() < 0.6),
        operator_country=country if rng.random() < 0.8 else rng.choice(CITIES)[1],
        air_gapped=rng.random() < 0.1,
        ready=rng.random() > 0.02,
        schedulable=rng.random() > 0.02,
        labels={"tier": rng.choice(("green", "standard"))},
    )


def random_fleet(n: int, seed: int) -> list[ModuleView]:
    """`n` modules named m00000, m00001, ..."""
    rng = random.Random(seed)
    return [random_module(rng, f"m{i:05d}") for i in range(n)]


@dataclass(frozen=True, slots=True)
class WorkloadMix:
    """Knobs of the deployment generator (how constrained deployments are)."""

    max_regions: int = 3
    max_region_replicas: int = 4
    latency_slos: tuple[float | None, ...] = (None, 50.0, 100.0, 150.0, 250.0)
    policy_chance: float = 0.3
    energy_chance: float = 0.1
    gpus_per_replica: tuple[int, ...] = (1, 1, 1, 2, 4)
    max_fixed_replicas: int = 6
    #: replicas.min of deployments with demand (capped at their total); a deployment without
    #: demand has a fixed count, all of it guaranteed. Empty: no guaranteed replicas.
    guaranteed: tuple[int, ...] = (1, 1, 1, 2, 3)
    #: PriorityClass values drawn per deployment (a single value draws nothing).
    priorities: tuple[int, ...] = (0,)


def random_workload(
    rng: random.Random, key: str, mix: WorkloadMix, namespaces: tuple[str, ...]
) -> WorkloadView:
    """One deployment with demand in one to `max_regions` regions (or none)."""
    regions: list[RegionDemand] = []
    namespace = key.split("/", 1)[0]
    # Teams bound by EU residency have mostly European users.
    cities = _EEA_CITIES if namespace == "eu" and rng.random() < 0.9 else CITIES
    if rng.random() < 0.85:
        for j, (city, country, lat, lon, _) in enumerate(
            rng.sample(cities, rng.randint(1, mix.max_regions))
        ):
            regions.append(
                RegionDemand(
                    f"r{j}-{city}",
                    lat + rng.uniform(-2, 2),
                    lon + rng.uniform(-2, 2),
                    rng.randint(1, mix.max_region_replicas),
                    country,
                )
            )
    total = sum(r.replicas for r in regions) if regions else rng.randint(1, mix.max_fixed_replicas)
    models = (
        frozenset(m for m, _, _ in GPU_MODELS if rng.random() < 0.6)
        if rng.random() < 0.5
        else frozenset()
    )
    energy = rng.random() < mix.energy_chance
    # Drawn after everything else, so the other knobs keep giving the same instances.
    guaranteed = 0
    if mix.guaranteed:
        guaranteed = min(total, rng.choice(mix.guaranteed)) if regions else total
    priority = rng.choice(mix.priorities) if len(mix.priorities) > 1 else mix.priorities[0]
    return WorkloadView(
        key=key,
        replicas=total,
        gpus_per_replica=rng.choice(mix.gpus_per_replica),
        gpu_models=models,
        min_gpu_memory_gib=rng.choice((0, 0, 0, 24, 40)),
        regions=tuple(regions),
        max_latency_ms=rng.choice(mix.latency_slos) if regions else None,
        min_modules=rng.choice((1, 1, 2, 3)),
        latency_weight=rng.choice((0.5, 1.0, 2.0)),
        carbon_weight=rng.choice((0.0, 0.5, 1.0)),
        min_renewable_share=rng.choice((0.2, 0.5)) if energy else None,
        max_carbon_intensity=rng.choice((200.0, 400.0)) if energy else None,
        data_classification=rng.choice(("public", "internal", "confidential", "restricted")),
        namespace_labels={"residency": "eu" if namespace in ("eu", "eu-chat") else "global"},
        labels={"team": rng.choice(("a", "b", "c"))},
        sovereignty_policies=("operators-eea",) if rng.random() < mix.policy_chance * 0.2 else (),
        min_replicas=guaranteed,
        priority=priority,
    )


def random_workloads(n: int, seed: int, mix: WorkloadMix | None = None) -> list[WorkloadView]:
    """`n` deployments in a few namespaces, keys "ns/d00000"..."""
    rng = random.Random(seed)
    namespaces = ("eu", "global", "batch")
    mix = mix or WorkloadMix()
    return [
        random_workload(rng, f"{rng.choice(namespaces)}/d{i:05d}", mix, namespaces)
        for i in range(n)
    ]


def congest(
    modules: Sequence[ModuleView], workloads: Sequence[WorkloadView], congestion: float
) -> list[WorkloadView]:
    """The deployments scaled so they ask for `congestion` times the fleet's free GPUs (2.0:
    twice what fits). Every region's replicas (or a fixed count) grow or shrink by the same
    factor, at least one each, so the fleet and the mix of rules stay as they are; guaranteed
    counts stay as drawn (capped at the new totals).
    """
    asked = sum(w.replicas * w.gpus_per_replica for w in workloads)
    free = sum(p.free for m in modules for p in m.pools)
    if asked <= 0 or free <= 0 or congestion <= 0:
        return list(workloads)
    factor = congestion * free / asked
    out: list[WorkloadView] = []
    for w in workloads:
        if w.regions:
            regions = tuple(
                dataclasses.replace(r, replicas=max(1, round(r.replicas * factor)))
                for r in w.regions
            )
            total = sum(r.replicas for r in regions)
        else:
            regions, total = (), max(1, round(w.replicas * factor))
        guaranteed = total if not w.regions else min(w.min_replicas, total)
        out.append(dataclasses.replace(w, regions=regions, replicas=total, min_replicas=guaranteed))
    return out


def standard_policies() -> list[PolicyView]:
    """Policies like a real platform team's: EU residency, certifications, operators."""
    eu = Selector.of({"residency": "eu"})
    return [
        PolicyView(
            "eu-restricted",
            namespace_selector=eu,
            data_classifications=frozenset({"restricted", "confidential"}),
            allowed_jurisdictions=("EU", "EEA"),
            required_certifications=("ISO27001",),
            data_residency="SameJurisdictionAsDemand",
        ),
        PolicyView(
            "no-warsaw-restricted",
            data_classifications=frozenset({"restricted"}),
            denied_countries=("PL",),
        ),
        PolicyView(  # bound only by deployments naming it in spec.sovereigntyPolicies
            "operators-eea",
            deployment_selector=Selector.of({"policy": "operators-eea"}),
            operator_countries=("EEA",),
        ),
        PolicyView(
            "audit-five-eyes",
            enforcement="Audit",
            data_classifications=frozenset({"confidential"}),
            denied_operator_countries=("FIVE_EYES",),
        ),
    ]
