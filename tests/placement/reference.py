"""An exact fleet-wide optimum, built from the brief independently of the engine.

A plain MILP over every (deployment, region, module, pool) the referee in `checks.py` allows,
solved by HiGHS without limits: the yardstick for the engine's fleet-wide and incremental modes
on instances small enough to solve exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from tests.placement.checks import module_allowed, residency_ok

from aifactory.placement import (
    ModuleView,
    PlacementSettings,
    PolicyView,
    RegionDemand,
    WorkloadView,
    bind,
)
from aifactory.placement.geo import rtt_ms


def optimum(
    modules: Sequence[ModuleView],
    workloads: Sequence[WorkloadView],
    policies: Sequence[PolicyView],
    settings: PlacementSettings | None = None,
    *,
    time_limit: float = 600.0,
) -> float:
    """The minimum total cost over all placements that keep every hard rule (priorities
    aside); the MILP must be proven optimal within `time_limit` seconds."""
    s = settings or PlacementSettings()
    cost: list[float] = []
    ub: list[float] = []
    integer: list[int] = []
    rows: list[dict[int, float]] = []
    lo: list[float] = []
    hi: list[float] = []

    def col(c: float, upper: float, is_int: bool) -> int:
        cost.append(c)
        ub.append(upper)
        integer.append(int(is_int))
        return len(cost) - 1

    pool_use: dict[tuple[int, int], dict[int, float]] = {}
    power_use: dict[int, dict[int, float]] = {}
    offset = 0.0
    for wl in workloads:
        enforce = bind(wl, policies).enforce
        if bind(wl, policies).missing:
            enforce = (*enforce, PolicyView("missing", allowed_jurisdictions=("NOWHERE",)))
        g = wl.gpus_per_replica
        limit = wl.max_latency_ms or s.latency_normaliser_ms
        regions: list[tuple[str, int, RegionDemand | None]] = [
            (r.name, r.replicas, r) for r in wl.regions
        ] or [("", wl.replicas, None)]
        per_module: dict[int, list[int]] = {}
        unplaced: list[int] = []
        for _name, n, r in regions:
            entries: dict[int, float] = {}
            for mi, m in enumerate(modules):
                if module_allowed(m, wl, enforce):
                    continue
                carbon = wl.carbon_weight * m.carbon_intensity * m.pue / s.carbon_normaliser
                c = carbon
                if r is not None:
                    rtt = rtt_ms(r.latitude, r.longitude, m.latitude, m.longitude, s)
                    if wl.max_latency_ms is not None and rtt > wl.max_latency_ms + 1e-9:
                        continue
                    if not residency_ok(m, r.country, enforce):
                        continue
                    c += wl.latency_weight * rtt / limit
                for pi, p in enumerate(m.pools):
                    if wl.gpu_models and p.model not in wl.gpu_models:
                        continue
                    if p.memory_gib < wl.min_gpu_memory_gib or p.count < g:
                        continue
                    x = col(c, n, True)
                    entries[x] = 1.0
                    pool_use.setdefault((mi, pi), {})[x] = g
                    power_use.setdefault(mi, {})[x] = g * p.power_w * m.pue
                    per_module.setdefault(mi, []).append(x)
            u = col(s.unplaced_cost, n, False)
            unplaced.append(u)
            rows.append({**entries, u: 1.0})
            lo.append(n)
            hi.append(n)
        guaranteed = min(wl.min_replicas, wl.replicas)
        if guaranteed > 0:
            # Each unplaced replica beyond replicas - guaranteed costs the difference too.
            below = col(s.guaranteed_unplaced_cost - s.unplaced_cost, guaranteed, False)
            rows.append({**{u: 1.0 for u in unplaced}, below: -1.0})
            lo.append(-np.inf)
            hi.append(wl.replicas - guaranteed)
        need = min(wl.min_modules, wl.replicas)
        if need > 0:
            if not per_module:
                offset += s.spread_cost * need
                continue
            ys: dict[int, float] = {}
            for xs in per_module.values():
                y = col(0.0, 1.0, True)
                ys[y] = 1.0
                rows.append({y: 1.0, **{x: -1.0 for x in xs}})
                lo.append(-np.inf)
                hi.append(0.0)
            short = col(s.spread_cost, need, False)
            rows.append({**ys, short: 1.0})
            lo.append(need)
            hi.append(np.inf)
    for (mi, pi), use in pool_use.items():
        rows.append(use)
        lo.append(-np.inf)
        hi.append(modules[mi].pools[pi].free)
    for mi, use in power_use.items():
        m = modules[mi]
        others = sum(p.allocated * p.power_w * m.pue for p in m.pools)
        rows.append(use)
        lo.append(-np.inf)
        hi.append(max(0.0, m.power_budget_kw * 1000.0 - others) + 1e-6)
    if not cost:
        return offset + sum(s.unplaced_cost * w.replicas for w in workloads)
    triplets = [(i, j, v) for i, row in enumerate(rows) for j, v in row.items()]
    a = sp.csr_array(
        ([t[2] for t in triplets], ([t[0] for t in triplets], [t[1] for t in triplets])),
        shape=(len(rows), len(cost)),
    )
    res = milp(
        c=np.array(cost),
        integrality=np.array(integer),
        bounds=Bounds(np.zeros(len(cost)), np.array(ub)),
        constraints=LinearConstraint(a, np.array(lo), np.array(hi)),
        options={"mip_rel_gap": 0.0, "time_limit": time_limit},
    )
    assert res.status == 0, res.message
    return float(res.fun) + offset
