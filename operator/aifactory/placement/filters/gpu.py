"""GPU model and memory: a module needs a pool of an accepted model with enough memory per GPU
and at least gpusPerReplica GPUs in total. These never change without a spec change.

`eligible_pools` is the shared precomputation: the free-GPU and power filters and every solver
count capacity only in the pools it accepts.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from aifactory.placement.framework import BoolArray, Code, Verdicts
from aifactory.placement.model import WorkloadView
from aifactory.placement.state import FleetState, WorkloadState

NAME = "GpuModel"
REASON_MODEL = "no GPU of model {models}"
REASON_MEMORY = "GPU memory below {gib:g} GiB"
REASON_POOL_SIZE = "GPU pool smaller than {gpus} GPUs per replica"


def accepted_models(fleet: FleetState, wl: WorkloadView) -> BoolArray:
    """Pools whose model the deployment accepts (an empty list accepts any model)."""
    if not wl.gpu_models:
        return np.ones(fleet.n_pools, np.bool_)
    wanted = np.zeros(len(fleet.models) + 1, np.bool_)
    for m in wl.gpu_models:
        if m in fleet.models:
            wanted[fleet.models[m]] = True
    out: BoolArray = wanted[fleet.pool_model]
    return out


def eligible_pools(fleet: FleetState, wl: WorkloadView) -> BoolArray:
    """Pools a replica may use: accepted model, enough memory, enough GPUs in the pool."""
    out: BoolArray = (
        accepted_models(fleet, wl)
        & (fleet.pool_memory >= wl.min_gpu_memory_gib - 1e-9)
        & (fleet.pool_count >= max(1, wl.gpus_per_replica))
    )
    return out


def _any_per_module(fleet: FleetState, pools: BoolArray) -> BoolArray:
    out: BoolArray = np.bincount(fleet.pool_module, weights=pools, minlength=fleet.n) > 0
    return out


def cache_key(ws: WorkloadState) -> Hashable:
    """The answer depends only on the GPU shape."""
    return ws.shape


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Report the first unmet requirement: model, then memory, then pool size."""
    wl = ws.workload
    v = Verdicts.passing(NAME, fleet.n)
    model = accepted_models(fleet, wl)
    memory = model & (fleet.pool_memory >= wl.min_gpu_memory_gib - 1e-9)
    models = ",".join(sorted(wl.gpu_models)) or "any"
    v.add(
        ~_any_per_module(fleet, model),
        REASON_MODEL.format(models=models),
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    )
    v.add(
        ~_any_per_module(fleet, memory),
        REASON_MEMORY.format(gib=wl.min_gpu_memory_gib),
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    )
    v.add(
        ~_any_per_module(fleet, ws.eligible_pool),
        REASON_POOL_SIZE.format(gpus=max(1, wl.gpus_per_replica)),
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    )
    return v
