"""Reliability term: reliabilityWeight * (1 - readyFraction(m)) / 0.01.

readyFraction is the share of its reliability window a module was Ready (status.reliability);
with the default normaliser a module Ready 99% of the time costs 1.0 per replica, one Ready
99.9% costs 0.1. The weight defaults to 0, so costs do not change unless a deployment asks:
then flaky modules lose replicas to steadier ones before they fail for good.
"""

from __future__ import annotations

import numpy as np

from aifactory.placement.framework import FloatArray
from aifactory.placement.model import PlacementSettings
from aifactory.placement.state import FleetState, WorkloadState

NAME = "Reliability"
UNIT = "% not Ready"


def normaliser(settings: PlacementSettings) -> float:
    """The configured unreliability that costs 1.0 (0.01 by default)."""
    return settings.reliability_normaliser


def raw(fleet: FleetState) -> FloatArray:
    """Unreliability per module: 1 - readyFraction, never negative."""
    out: FloatArray = np.clip(1.0 - fleet.reliability, 0.0, 1.0)
    return out


def cost(fleet: FleetState, ws: WorkloadState) -> FloatArray | None:
    """Weighted reliability cost per module; None when the deployment gives it no weight."""
    weight = ws.workload.reliability_weight
    if weight <= 0:
        return None
    out: FloatArray = raw(fleet) * (weight / normaliser(fleet.settings))
    return out
