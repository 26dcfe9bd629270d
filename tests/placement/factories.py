"""Small builders for engine views with sensible defaults, so each test states only what
matters to it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aifactory.placement import (
    FleetState,
    GpuPool,
    ModuleView,
    PlacementSettings,
    PolicyView,
    RegionDemand,
    WorkloadView,
)
from aifactory.placement.cycle import prepare
from aifactory.placement.state import WorkloadState

# Real places, so latencies are plausible.
IE = ("IE", 53.35, -6.26)
DE = ("DE", 50.11, 8.68)
FR = ("FR", 48.86, 2.35)
IS = ("IS", 64.13, -21.90)
NO = ("NO", 59.91, 10.75)
PL = ("PL", 52.23, 21.01)
US = ("US", 39.04, -77.49)
SG = ("SG", 1.35, 103.82)
IN = ("IN", 19.08, 72.88)


def pool(
    model: str = "H100", count: int = 8, memory: float = 80, power: float = 700, allocated: int = 0
) -> GpuPool:
    return GpuPool(model, count, memory, power, allocated)


def module(
    name: str = "m",
    where: tuple[str, float, float] = DE,
    *,
    pools: Sequence[GpuPool] | None = None,
    budget_kw: float = 1000.0,
    **kw: Any,
) -> ModuleView:
    country, lat, lon = where
    kw.setdefault("carbon_intensity", 100.0)
    kw.setdefault("pue", 1.0)
    return ModuleView(
        name=name,
        country=country,
        latitude=lat,
        longitude=lon,
        pools=tuple(pools if pools is not None else [pool()]),
        power_budget_kw=budget_kw,
        **kw,
    )


def region(
    name: str = "eu-west", where: tuple[str, float, float] = IE, replicas: int = 1
) -> RegionDemand:
    country, lat, lon = where
    return RegionDemand(name, lat, lon, replicas, country)


def workload(
    key: str = "ns/app",
    replicas: int | None = None,
    *,
    regions: Sequence[RegionDemand] = (),
    **kw: Any,
) -> WorkloadView:
    total = replicas if replicas is not None else (sum(r.replicas for r in regions) or 1)
    return WorkloadView(key=key, replicas=total, regions=tuple(regions), **kw)


def policy(name: str = "p", **kw: Any) -> PolicyView:
    return PolicyView(name=name, **kw)


def state(
    modules: Iterable[ModuleView],
    wl: WorkloadView,
    policies: Iterable[PolicyView] = (),
    settings: PlacementSettings | None = None,
) -> tuple[FleetState, WorkloadState]:
    """Fleet state and prepared workload state: what a plugin sees."""
    fleet = FleetState(modules, settings)
    return fleet, prepare(fleet, wl, tuple(policies))
