"""Measured latency (spec.slo.measured): a (region, module) pair whose measured latency stayed
above slo.maxLatencyMs longer than the signal tolerance is out of the SLO for that region.

The operator decides which pairs are out (controllers/accountability.py, from the Prometheus
readings, with hysteresis) and hands them over in `WorkloadView.slo_excluded`; this plugin only
turns them into per-region verdicts. Unlike sovereignty, this is a voluntary move: replicas
leave make-before-break, within the disruption budget.
"""

from __future__ import annotations

import numpy as np

from aifactory.placement.framework import RegionVerdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "MeasuredLatencySLO"
REASON_MEASURED = "measured latency above {ms:g} ms for {region}"


def filter(fleet: FleetState, ws: WorkloadState) -> RegionVerdicts:
    """False where the pair is excluded; one reason per region."""
    n_regions = len(ws.region_names)
    ok = np.ones((n_regions, fleet.n), np.bool_)
    excluded = ws.workload.slo_excluded
    limit = ws.workload.max_latency_ms
    reasons = [
        REASON_MEASURED.format(ms=limit or 0, region=region) if excluded else ""
        for region in ws.region_names
    ]
    if not excluded:
        return RegionVerdicts(NAME, ok, reasons)
    rows = {name: r for r, name in enumerate(ws.region_names)}
    for region, module in excluded:
        r, m = rows.get(region), fleet.index.get(module)
        if r is not None and m is not None:
            ok[r, m] = False
    return RegionVerdicts(NAME, ok, reasons)
