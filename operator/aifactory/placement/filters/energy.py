"""The deployment's `spec.energy`: minimum renewable share, maximum carbon intensity, and an
allow-list of energy source types (every source of the module must be allowed).

Share and intensity follow live signals (sun, wind, grid mix), so they may fit later; the
sources a module is built with do not change.
"""

from __future__ import annotations

from collections.abc import Hashable

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState, source_bits

NAME = "EnergyRules"
REASON_RENEWABLE = "renewable share below {share:g}"
REASON_CARBON = "carbon intensity above {max:g} gCO2e/kWh"
REASON_SOURCES = "energy sources outside {sources}"


def cache_key(ws: WorkloadState) -> Hashable:
    """The answer depends only on the three energy rules."""
    wl = ws.workload
    return (wl.allowed_sources, wl.min_renewable_share, wl.max_carbon_intensity)


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Static rule first (sources), then the live ones."""
    wl = ws.workload
    v = Verdicts.passing(NAME, fleet.n)
    if wl.allowed_sources:
        allowed = source_bits(wl.allowed_sources)
        bad = (fleet.source_bits & ~allowed) != 0
        v.add(
            bad,
            REASON_SOURCES.format(sources=",".join(sorted(wl.allowed_sources))),
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        )
    if wl.min_renewable_share is not None:
        bad = fleet.renewable < wl.min_renewable_share - 1e-9
        v.add(bad, REASON_RENEWABLE.format(share=wl.min_renewable_share), Code.UNSCHEDULABLE)
    if wl.max_carbon_intensity is not None:
        bad = fleet.carbon > wl.max_carbon_intensity + 1e-9
        v.add(bad, REASON_CARBON.format(max=wl.max_carbon_intensity), Code.UNSCHEDULABLE)
    return v
