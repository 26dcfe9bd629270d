"""spec.minReliability: a module must have been Ready at least that fraction of its
reliability window (status.reliability.readyFraction).

Readiness history changes as outages age out of the window, so a module below the bar may
fit later (Unschedulable, not Unresolvable). Running replicas on such a module break the rule
and move, make-before-break: flaky modules lose work before they fail for good.
"""

from __future__ import annotations

from collections.abc import Hashable

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "MinReliability"
REASON_RELIABILITY = "reliability below {min:g} (Ready fraction of its window)"


def cache_key(ws: WorkloadState) -> Hashable:
    """The answer depends only on the threshold."""
    return ws.workload.min_reliability


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Modules whose ready fraction is below the deployment's minimum fail."""
    minimum = ws.workload.min_reliability
    v = Verdicts.passing(NAME, fleet.n)
    if minimum is None:
        return v
    v.add(
        fleet.reliability < minimum - 1e-9,
        REASON_RELIABILITY.format(min=minimum),
        Code.UNSCHEDULABLE,
    )
    return v
