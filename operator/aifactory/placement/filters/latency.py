"""Latency SLO per demand region: a module may serve region r only if RTT(r, m) <= maxLatencyMs.

A module that can serve none of the deployment's regions is infeasible (the pipeline combines
the per-region answers).
"""

from __future__ import annotations

import numpy as np

from aifactory.placement.framework import RegionVerdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "LatencySLO"
REASON_LATENCY = "latency > {ms:g} ms for {region}"


def filter(fleet: FleetState, ws: WorkloadState) -> RegionVerdicts:
    """Uses the RTT matrix shared through the workload state."""
    limit = ws.workload.max_latency_ms
    if ws.rtt is None or limit is None:
        return RegionVerdicts(
            NAME, np.ones((len(ws.region_names), fleet.n), np.bool_), [""] * len(ws.region_names)
        )
    ok = ws.rtt <= limit + 1e-9
    reasons = [REASON_LATENCY.format(ms=limit, region=r) for r in ws.region_names]
    return RegionVerdicts(NAME, ok, reasons)
