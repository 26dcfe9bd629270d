"""Hypothesis strategies for small random fleets, deployments and policies.

Domains are small on purpose (a handful of countries, models, certifications) so that rules
collide often: the interesting cases are the ones where most modules are ruled out.
"""

from __future__ import annotations

from hypothesis import strategies as st

from aifactory.placement import (
    CurrentAssignment,
    GpuPool,
    ModuleView,
    PolicyView,
    RegionDemand,
    Selector,
    WorkloadView,
)

PLACES = [
    ("IS", 64.13, -21.90),
    ("NO", 59.91, 10.75),
    ("DE", 50.11, 8.68),
    ("FR", 48.86, 2.35),
    ("IE", 53.35, -6.26),
    ("PL", 52.23, 21.01),
    ("US", 39.04, -77.49),
    ("SG", 1.35, 103.82),
]
MODELS = [("H100", 80.0, 700.0), ("A100", 80.0, 400.0), ("L40S", 48.0, 350.0), ("L4", 24.0, 72.0)]
SOURCES = ["solar", "wind", "hydro", "geothermal", "nuclear", "grid", "gas"]
CERTS = ["ISO27001", "SOC2"]
TOKENS = ["EU", "EEA", "FIVE_EYES", "IS", "US", "DE"]


@st.composite
def pools(draw: st.DrawFn) -> tuple[GpuPool, ...]:
    chosen = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=2, unique=True))
    out = []
    for model, mem, power in chosen:
        count = draw(st.integers(1, 12))
        out.append(GpuPool(model, count, mem, power, draw(st.integers(0, count))))
    return tuple(out)


@st.composite
def modules(draw: st.DrawFn, name: str) -> ModuleView:
    country, lat, lon = draw(st.sampled_from(PLACES))
    ps = draw(pools())
    full_kw = sum(p.count * p.power_w for p in ps) / 1000
    return ModuleView(
        name=name,
        country=country,
        latitude=lat + draw(st.floats(-2, 2)),
        longitude=lon + draw(st.floats(-2, 2)),
        pools=ps,
        power_budget_kw=full_kw * draw(st.sampled_from([0.3, 0.7, 1.5, 1.5])),
        pue=draw(st.sampled_from([1.0, 1.2, 1.5])),
        carbon_intensity=draw(st.sampled_from([28.0, 56.0, 300.0, 700.0])),
        renewable_share=draw(st.sampled_from([0.0, 0.4, 0.9])),
        sources=frozenset(draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2))),
        jurisdictions=frozenset(draw(st.lists(st.sampled_from(TOKENS), max_size=1))),
        certifications=frozenset(draw(st.lists(st.sampled_from(CERTS), max_size=2))),
        operator_country=draw(st.sampled_from([None, "IS", "DE", "US"])),
        air_gapped=draw(st.sampled_from([False, False, True])),
        ready=draw(st.sampled_from([True] * 7 + [False])),
        schedulable=draw(st.sampled_from([True] * 7 + [False])),
        labels={"tier": draw(st.sampled_from(["green", "standard"]))},
    )


@st.composite
def fleets(draw: st.DrawFn, max_modules: int = 6) -> list[ModuleView]:
    n = draw(st.integers(1, max_modules))
    return [draw(modules(f"m{i}")) for i in range(n)]


@st.composite
def workloads(draw: st.DrawFn, key: str, module_names: list[str]) -> WorkloadView:
    regions = []
    for j in range(draw(st.integers(0, 2))):
        country, lat, lon = draw(st.sampled_from(PLACES))
        regions.append(RegionDemand(f"r{j}", lat, lon, draw(st.integers(0, 4)), country))
    total = sum(r.replicas for r in regions) if regions else draw(st.integers(0, 4))
    current: tuple[CurrentAssignment, ...] = ()
    if draw(st.booleans()) and module_names:
        m = draw(st.sampled_from(module_names))
        current = (CurrentAssignment(m, total, {r.name: r.replicas for r in regions}),)
    return WorkloadView(
        key=key,
        replicas=total,
        gpus_per_replica=draw(st.sampled_from([1, 1, 2])),
        gpu_models=frozenset(draw(st.sampled_from([[], [], ["H100", "A100"], ["L4"]]))),
        min_gpu_memory_gib=draw(st.sampled_from([0.0, 40.0])),
        regions=tuple(regions),
        max_latency_ms=draw(st.sampled_from([None, None, 20.0, 60.0])) if regions else None,
        min_modules=draw(st.integers(0, 3)),
        latency_weight=draw(st.sampled_from([0.0, 1.0, 2.0])),
        carbon_weight=draw(st.sampled_from([0.0, 1.0])),
        min_renewable_share=draw(st.sampled_from([None] * 5 + [0.4])),
        max_carbon_intensity=draw(st.sampled_from([None] * 5 + [300.0])),
        allowed_sources=frozenset(
            draw(st.sampled_from([[]] * 5 + [["hydro", "wind", "grid", "solar"]]))
        ),
        placement_modules=frozenset(
            draw(st.sampled_from([[]] * 5 + [module_names[:2]])) if module_names else []
        ),
        module_selector=draw(st.sampled_from([None] * 5 + [Selector.of({"tier": "green"})])),
        data_classification=draw(st.sampled_from(["public", "restricted"])),
        namespace_labels={"residency": draw(st.sampled_from(["eu", "global"]))},
        current=current,
    )


@st.composite
def policies(draw: st.DrawFn) -> list[PolicyView]:
    out = []
    for i in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        out.append(
            PolicyView(
                name=f"p{i}",
                enforcement=draw(st.sampled_from(["Enforce", "Enforce", "Audit"])),
                namespace_selector=draw(st.sampled_from([None, Selector.of({"residency": "eu"})])),
                data_classifications=frozenset(draw(st.sampled_from([[], ["restricted"]]))),
                allowed_jurisdictions=tuple(
                    draw(st.lists(st.sampled_from(TOKENS), max_size=3, unique=True))
                ),
                denied_countries=tuple(draw(st.sampled_from([[], ["PL"], ["FIVE_EYES"]]))),
                required_certifications=tuple(draw(st.sampled_from([[], [], ["ISO27001"]]))),
                operator_countries=tuple(draw(st.sampled_from([[], [], ["EEA"]]))),
                denied_operator_countries=tuple(draw(st.sampled_from([[], [], ["US"]]))),
                require_air_gapped=draw(st.sampled_from([False] * 5 + [True])),
                data_residency=draw(st.sampled_from(["None", "SameJurisdictionAsDemand"])),
            )
        )
    return out


@st.composite
def instances(
    draw: st.DrawFn, max_modules: int = 6, max_workloads: int = 4
) -> tuple[list[ModuleView], list[WorkloadView], list[PolicyView]]:
    fleet = draw(fleets(max_modules))
    names = [m.name for m in fleet]
    n = draw(st.integers(1, max_workloads))
    wls = [draw(workloads(f"ns/w{i}", names)) for i in range(n)]
    return fleet, wls, draw(policies())
