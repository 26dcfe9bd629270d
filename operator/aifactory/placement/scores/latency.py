"""Latency term: latencyWeight * RTT(r, m) / L with L = slo.maxLatencyMs or the default 100 ms.

Dividing by the SLO makes "half the budget" cost the same for a 10 ms robotics workload and a
200 ms batch one, so the weights mean the same thing across deployments.
"""

from __future__ import annotations

from aifactory.placement.framework import FloatArray
from aifactory.placement.model import PlacementSettings, WorkloadView
from aifactory.placement.state import FleetState, WorkloadState

NAME = "Latency"
UNIT = "ms"


def normaliser(settings: PlacementSettings, wl: WorkloadView) -> float:
    """L: the SLO when set, else the configured default."""
    return wl.max_latency_ms or settings.latency_normaliser_ms


def cost(fleet: FleetState, ws: WorkloadState) -> FloatArray | None:
    """(regions x modules) weighted cost; None without demand regions (no latency term)."""
    if ws.rtt is None:
        return None
    out: FloatArray = ws.rtt * (
        ws.workload.latency_weight / normaliser(fleet.settings, ws.workload)
    )
    return out
