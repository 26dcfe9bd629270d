"""Readiness, drain and cordon: only Ready, schedulable modules take new replicas.

A cordon (or NotReady within tolerationSeconds) keeps what runs; a drain or NotReady past the
toleration does not (see `cycle.run_filters`, which builds the keep-what-runs mask).

Both are "could fit later": a module comes back, a cordon is lifted.
"""

from __future__ import annotations

from collections.abc import Hashable

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "ModuleReadiness"
REASON_NOT_READY = "module not ready"
REASON_CORDONED = "module cordoned"
REASON_DRAINING = "module draining"


def cache_key(ws: WorkloadState) -> Hashable:
    """The same answer for every deployment."""
    return ()


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Reject NotReady modules first (the stronger fact), then draining, then cordoned ones."""
    v = Verdicts.passing(NAME, fleet.n)
    v.add(~fleet.ready, REASON_NOT_READY, Code.UNSCHEDULABLE)
    v.add(fleet.draining, REASON_DRAINING, Code.UNSCHEDULABLE)
    v.add(~fleet.schedulable, REASON_CORDONED, Code.UNSCHEDULABLE)
    return v
