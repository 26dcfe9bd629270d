"""Free GPUs: at least one replica's worth of free GPUs in an eligible pool.

Capacity comes back when other replicas leave, so this is "could fit later".
"""

from __future__ import annotations

from collections.abc import Hashable

from aifactory.placement.framework import Code, Verdicts
from aifactory.placement.state import FleetState, WorkloadState

NAME = "FreeGpus"
REASON_INSUFFICIENT = "insufficient {models}"


def models_label(models: frozenset[str]) -> str:
    """How the reason names the GPUs: the accepted models, or "GPUs" when any will do."""
    return ",".join(sorted(models)) or "GPUs"


def cache_key(ws: WorkloadState) -> Hashable | None:
    """Shareable only while capacity is the fleet's own (not in the sequential mode)."""
    return ws.shape if ws.initial_capacity else None


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Uses the capacity precomputed in the workload state (eligible pools only)."""
    return Verdicts.from_mask(
        NAME,
        ws.gpu_capacity > 0,
        REASON_INSUFFICIENT.format(models=models_label(ws.workload.gpu_models)),
        Code.UNSCHEDULABLE,
    )
