"""Filter plugins, one per file, run in this order.

Rules that never fit (spec, policy) come before rules that may fit later (readiness, capacity),
so a module's explanation names the most lasting reason first. Region filters run last: they
answer per (region, module) pair.
"""

from __future__ import annotations

from aifactory.placement.filters import (
    energy,
    free_gpus,
    gpu,
    latency,
    measured_latency,
    placement,
    power,
    readiness,
    reliability,
    residency,
    sovereignty,
)
from aifactory.placement.framework import ModuleFilter, RegionFilter

MODULE_FILTERS: tuple[ModuleFilter, ...] = (
    ModuleFilter(placement.NAME, placement.filter, placement.cache_key),
    ModuleFilter(gpu.NAME, gpu.filter, gpu.cache_key),
    ModuleFilter(sovereignty.NAME, sovereignty.filter, sovereignty.cache_key),
    ModuleFilter(energy.NAME, energy.filter, energy.cache_key),
    ModuleFilter(reliability.NAME, reliability.filter, reliability.cache_key),
    ModuleFilter(readiness.NAME, readiness.filter, readiness.cache_key),
    ModuleFilter(free_gpus.NAME, free_gpus.filter, free_gpus.cache_key),
    ModuleFilter(power.NAME, power.filter, power.cache_key),
)

REGION_FILTERS: tuple[RegionFilter, ...] = (
    RegionFilter(latency.NAME, latency.filter),
    RegionFilter(residency.NAME, residency.filter),
    RegionFilter(measured_latency.NAME, measured_latency.filter),
)

#: Plugins whose "no" is about free capacity now, not about the module being allowed at all.
CAPACITY_PLUGINS: frozenset[str] = frozenset({free_gpus.NAME, power.NAME})

__all__ = ["CAPACITY_PLUGINS", "MODULE_FILTERS", "REGION_FILTERS"]
