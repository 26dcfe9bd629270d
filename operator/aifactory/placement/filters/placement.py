"""The deployment's own `spec.placement`: an allow-list of module names and a label selector."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "PlacementAffinity"
REASON_NOT_LISTED = "not in placement.modules"
REASON_SELECTOR = "labels do not match placement.moduleSelector"


def cache_key(ws: WorkloadState) -> Hashable:
    """The answer depends only on the allow-list and the selector."""
    return (ws.workload.placement_modules, ws.workload.module_selector)


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Both constraints must hold when given; an empty list or selector allows every module."""
    wl = ws.workload
    v = Verdicts.passing(NAME, fleet.n)
    if wl.placement_modules:
        listed = np.zeros(fleet.n, np.bool_)
        listed[[fleet.index[n] for n in wl.placement_modules if n in fleet.index]] = True
        v.add(~listed, REASON_NOT_LISTED, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    if wl.module_selector is not None and not wl.module_selector.empty:
        ok = fleet.selector_mask(wl.module_selector)
        v.add(~ok, REASON_SELECTOR, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    return v
