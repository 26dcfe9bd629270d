"""Find feasible, then score: the first two stages of the pipeline for one deployment.

`prepare` binds policies, computes the shared per-deployment data (RTT matrix, eligible pools,
capacity per module), runs every filter plugin and every score term, and returns the
`WorkloadState` the solvers and the explanation read. Selection and replica division are not
here (see assignment.py and optimize.py), in the spirit of Karmada's pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aifactory.placement.binding import Binding, bind
from aifactory.placement.filters import CAPACITY_PLUGINS, MODULE_FILTERS, REGION_FILTERS, gpu
from aifactory.placement.filters import readiness as readiness_filter
from aifactory.placement.framework import BoolArray, FloatArray, IntArray, Verdicts
from aifactory.placement.model import PolicyView, WorkloadView
from aifactory.placement.scores import carbon, latency, reliability
from aifactory.placement.state import FleetState, WorkloadState


def prepare(
    fleet: FleetState,
    workload: WorkloadView,
    policies: Iterable[PolicyView] | Binding = (),
    *,
    pool_free: IntArray | None = None,
    power_free_w: FloatArray | None = None,
) -> WorkloadState:
    """Filter and score every module for one deployment against the given free capacity.

    `pool_free` / `power_free_w` default to the fleet's free capacity; the sequential mode
    passes what is left after the deployments it has already placed.
    """
    binding = policies if isinstance(policies, Binding) else bind(workload, policies)
    measured: BoolArray | None = None
    if workload.regions:
        names = tuple(r.name for r in workload.regions)
        countries = tuple(r.country for r in workload.regions)
        demand = np.array([r.replicas for r in workload.regions], np.int64)
        rows = [fleet.region_rtt(r.name, r.latitude, r.longitude) for r in workload.regions]
        rtt: FloatArray | None = (
            np.vstack([row for row, _ in rows]) if fleet.n else np.zeros((len(names), 0))
        )
        if any(mask is not None for _, mask in rows):
            measured = np.vstack(
                [np.zeros(fleet.n, np.bool_) if mask is None else mask for _, mask in rows]
            )
    else:
        names, countries = ("",), (None,)
        demand = np.array([workload.replicas], np.int64)
        rtt = None
    initial = pool_free is None and power_free_w is None
    shape = (workload.gpu_models, workload.min_gpu_memory_gib, workload.gpus_per_replica)
    hit = fleet.cache.get(("shape", shape)) if initial else None
    if hit is None:
        # eligibility depends on the shape alone, whatever is free
        cached = fleet.cache.get(("eligible", shape))
        if isinstance(cached, np.ndarray):
            eligible: BoolArray = cached
        else:
            eligible = fleet.cache[("eligible", shape)] = gpu.eligible_pools(fleet, workload)
        cap, gpu_cap = fleet.capacity(
            eligible,
            workload.gpus_per_replica,
            fleet.pool_free if pool_free is None else pool_free,
            fleet.power_free_w if power_free_w is None else power_free_w,
        )
        if initial:
            fleet.cache[("shape", shape)] = (eligible, cap, gpu_cap)
    else:
        eligible, cap, gpu_cap = hit  # type: ignore[misc]
    ws = WorkloadState(
        workload=workload,
        binding=binding,
        region_names=names,
        region_countries=countries,
        demand=demand,
        has_demand=bool(workload.regions),
        rtt=rtt,
        eligible_pool=eligible,
        capacity=cap,
        gpu_capacity=gpu_cap,
        initial_capacity=initial,
        rtt_measured=measured,
    )
    run_filters(fleet, ws)
    run_scores(fleet, ws)
    return ws


def run_filters(fleet: FleetState, ws: WorkloadState) -> None:
    """Every filter plugin, then the combined masks the solvers use.

    `static_ok` leaves out capacity and cordon: it is what a running placement must still
    satisfy to be kept (a cordon keeps what runs, a drain does not; capacity is checked by
    reserving it).
    """
    verdicts: list[Verdicts] = []
    keys: list[object] | None = []
    for f in MODULE_FILTERS:
        key = f.key(ws) if f.key is not None else None
        if key is None:
            verdicts.append(f.filter(fleet, ws))
            keys = None
            continue
        if keys is not None:
            keys.append((f.name, key))
        hit = fleet.cache.get((f.name, key))
        if hit is None:
            hit = fleet.cache[(f.name, key)] = f.filter(fleet, ws)
        verdicts.append(hit)  # type: ignore[arg-type]
    ws.module_verdicts = verdicts
    ws.verdicts_key = tuple(keys) if keys is not None else None
    ws.region_verdicts = [f.filter(fleet, ws) for f in REGION_FILTERS]
    module_ok = np.ones(fleet.n, np.bool_)
    static_module = fleet.ready & ~fleet.draining
    for v in ws.module_verdicts:
        module_ok &= v.ok
        if v.plugin not in CAPACITY_PLUGINS and v.plugin != readiness_filter.NAME:
            static_module &= v.ok
    region_ok = np.ones((len(ws.region_names), fleet.n), np.bool_)
    for rv in ws.region_verdicts:
        region_ok &= rv.ok
    ws.module_ok = module_ok
    ws.static_ok = static_module[None, :] & region_ok
    ws.feasible = module_ok[None, :] & region_ok
    ws.feasible_any = np.asarray(ws.feasible.any(axis=0), np.bool_)


def run_scores(fleet: FleetState, ws: WorkloadState) -> None:
    """The brief's per-replica cost for every (region, module) pair, kept per term."""
    ws.carbon_cost = carbon.cost(fleet, ws)
    lat = latency.cost(fleet, ws)
    ws.latency_cost = lat if lat is not None else np.zeros((1, fleet.n))
    ws.cost = ws.latency_cost + ws.carbon_cost[None, :]
    rel = reliability.cost(fleet, ws)
    if rel is not None:  # only with a weight: costs stay exactly as they were without one
        ws.reliability_cost = rel
        ws.cost = ws.cost + rel[None, :]
    else:
        ws.reliability_cost = np.zeros(fleet.n)
