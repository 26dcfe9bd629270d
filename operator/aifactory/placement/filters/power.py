"""Power budget: sum of GPUs * powerW * pue must stay within powerBudgetKW * 1000.

A module with free GPUs but no power headroom for one more replica fails here, not in FreeGpus,
so the explanation names the real bottleneck.
"""

from __future__ import annotations

from collections.abc import Hashable

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "PowerBudget"
REASON_POWER = "power budget exceeded"


def cache_key(ws: WorkloadState) -> Hashable | None:
    """Shareable only while capacity is the fleet's own (not in the sequential mode)."""
    return ws.shape if ws.initial_capacity else None


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Fails modules whose GPU capacity is positive but whose power-bounded capacity is zero."""
    ok = (ws.gpu_capacity == 0) | (ws.capacity > 0)
    return Verdicts.from_mask(NAME, ok, REASON_POWER, Code.UNSCHEDULABLE)
