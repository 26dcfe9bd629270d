"""Carbon term: carbonWeight * carbonIntensity(m) * pue(m) / 500.

The effective intensity (live signal when present) times PUE is what one GPU-hour there really
emits per kWh of IT load; 500 gCO2e/kWh brings it to the same order as the latency term.
"""

from __future__ import annotations

from aifactory.placement.framework import FloatArray
from aifactory.placement.model import PlacementSettings
from aifactory.placement.state import FleetState, WorkloadState

NAME = "Carbon"
UNIT = "gCO2e/kWh"


def normaliser(settings: PlacementSettings) -> float:
    """The configured carbon normaliser (500 by default)."""
    return settings.carbon_normaliser


def raw(fleet: FleetState) -> FloatArray:
    """Carbon intensity times PUE per module (computed once per cycle)."""
    hit = fleet.cache.get((NAME, "raw"))
    if hit is None:
        hit = fleet.cache[(NAME, "raw")] = fleet.carbon * fleet.pue
    out: FloatArray = hit  # type: ignore[assignment]
    return out


def cost(fleet: FleetState, ws: WorkloadState) -> FloatArray:
    """Weighted carbon cost per module (the same for every region it serves)."""
    out: FloatArray = raw(fleet) * (ws.workload.carbon_weight / normaliser(fleet.settings))
    return out
