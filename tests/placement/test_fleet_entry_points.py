"""The fleet-wide solve's cheaper entry points give the same placements as `place_fleet`.

The simulator replays thousands of fleet solves a year: it prepares each deployment once per
step (`place_prepared`), asks for no explanations (`explain=False`) and swaps running
placements without re-validating the deployment (`WorkloadView.with_current`). Each must
change nothing but the work done.
"""

from __future__ import annotations

import dataclasses

import pytest

from aifactory.placement import place_fleet
from aifactory.placement.cycle import prepare
from aifactory.placement.model import CurrentAssignment
from aifactory.placement.optimize import place_prepared
from aifactory.placement.result import FleetDecision
from aifactory.placement.state import FleetState
from aifactory.placement.synthetic import (
    congest,
    random_fleet,
    random_workloads,
    standard_policies,
)


def _placements(res: FleetDecision) -> list[tuple[str, str, tuple[tuple[str, int], ...]]]:
    return [
        (
            d.deployment,
            d.stability,
            tuple((a.module, a.replicas) for a in d.assignments),
        )
        for d in res.placements
    ]


@pytest.mark.parametrize("seed", range(3))
def test_explain_false_changes_no_placement_and_leaves_explanations_empty(seed: int) -> None:
    modules = random_fleet(15, seed)
    wls = congest(modules, random_workloads(25, 100 + seed), 1.5)
    pols = standard_policies()
    full = place_fleet(wls, modules, pols, prove=False)
    bare = place_fleet(wls, modules, pols, prove=False, explain=False)
    assert _placements(bare) == _placements(full)
    assert [d.cost for d in bare.placements] == [d.cost for d in full.placements]
    assert [d.unplaced_regions for d in bare.placements] == [
        d.unplaced_regions for d in full.placements
    ]
    assert bare.total_cost == full.total_cost
    assert any(d.explanation for d in full.placements)
    assert all(not d.explanation and not d.message for d in bare.placements)


@pytest.mark.parametrize("seed", range(3))
def test_place_prepared_equals_place_fleet(seed: int) -> None:
    modules = random_fleet(15, seed)
    wls = congest(modules, random_workloads(25, 200 + seed), 1.5)
    pols = standard_policies()
    fleet = FleetState(modules)
    states = sorted((prepare(fleet, wl, pols) for wl in wls), key=lambda ws: ws.key)
    ours = place_prepared(fleet, states)
    theirs = place_fleet(wls, FleetState(modules), pols)
    assert _placements(ours) == _placements(theirs)
    assert ours.total_cost == pytest.approx(theirs.total_cost)
    assert ours.lower_bound == pytest.approx(theirs.lower_bound)


def test_place_prepared_refuses_unsorted_or_duplicate_keys() -> None:
    modules = random_fleet(5, 1)
    wls = random_workloads(3, 7)
    fleet = FleetState(modules)
    states = sorted((prepare(fleet, wl, ()) for wl in wls), key=lambda ws: ws.key)
    with pytest.raises(ValueError, match="unique and sorted"):
        place_prepared(fleet, list(reversed(states)))
    with pytest.raises(ValueError, match="unique and sorted"):
        place_prepared(fleet, [states[0], states[0]])


def test_with_current_equals_dataclasses_replace() -> None:
    wl = random_workloads(1, 3)[0]
    current = (CurrentAssignment("m-1", wl.replicas, {}, {}),)
    assert wl.with_current(current) == dataclasses.replace(wl, current=current)
    assert wl.with_current(current).current == current
    assert wl.current == ()  # the original is untouched


# ---------------------------------------------------------------- small-fleet fast paths
def _capacity_numpy(
    fleet: FleetState, eligible, g: int, pool_free, power_free, modules=None
) -> tuple[list[int], list[int]]:
    """`FleetState.capacity` with the small-fleet path turned off (the vectorised one)."""
    import aifactory.placement.state as state_module

    saved = state_module._SMALL_POOLS
    state_module._SMALL_POOLS = -1
    try:
        cap, gpu = fleet.capacity(eligible, g, pool_free, power_free, modules)
    finally:
        state_module._SMALL_POOLS = saved
    return cap.tolist(), gpu.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_small_fleet_capacity_equals_the_vectorised_one(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    fleet = FleetState(random_fleet(12, seed))
    assert fleet.n_pools <= 64  # the Python path runs
    for _ in range(40):
        eligible = rng.random(fleet.n_pools) < 0.8
        pool_free = rng.integers(-2, 40, fleet.n_pools)
        # from roomy to power-bound, and a module over its budget (negative free power)
        power_free = fleet.power_budget_w * rng.uniform(-0.1, 1.0, fleet.n)
        g = int(rng.choice([1, 2, 3, 4, 8]))
        modules = None if rng.random() < 0.5 else np.sort(rng.choice(fleet.n, 5, replace=False))
        cap, gpu = fleet.capacity(eligible, g, pool_free, power_free, modules)
        assert (cap.tolist(), gpu.tolist()) == _capacity_numpy(
            fleet, eligible, g, pool_free, power_free, modules
        )


def _fit_pools_reference(fleet, module, eligible, g, pool_free, power_free, replicas, prefer):
    """`fit_pools` as it was before the Python-list fast path (numpy scalars, a copy of
    pool_free between the passes): the answers must not change."""
    import math

    g = max(1, g)
    rem_w = float(power_free[module])
    pue = float(fleet.pue[module])
    out = []
    left = replicas
    order = list(fleet.module_pools[module])
    if prefer:
        for p in order:
            model = fleet.modules[module].pools[int(fleet.pool_orig[p])].model
            k = min(prefer.get(model, 0), left)
            if k > 0 and eligible[p]:
                n = min(k, int(pool_free[p]) // g)
                need = g * float(fleet.pool_power_w[p]) * pue
                if need > 0:
                    n = min(n, max(0, math.floor((rem_w + 1e-6) / need)))
                if n > 0:
                    out.append((p, n))
                    rem_w -= n * need
                    left -= n
        if not left:
            return out
        pool_free = pool_free.copy()
        for p, n in out:
            pool_free[p] -= n * g
    for p in order:
        if left <= 0:
            break
        if not eligible[p]:
            continue
        need = g * float(fleet.pool_power_w[p]) * pue
        n = int(pool_free[p]) // g
        if need > 0:
            n = min(n, max(0, math.floor((rem_w + 1e-6) / need)))
        n = min(n, left)
        if n > 0:
            out.append((p, n))
            rem_w -= n * need
            left -= n
    merged: dict[int, int] = {}
    for p, n in out:
        merged[p] = merged.get(p, 0) + n
    return list(merged.items())


@pytest.mark.parametrize("seed", range(4))
def test_fit_pools_and_consume_keep_their_answers(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    fleet = FleetState(random_fleet(20, 50 + seed))
    for _ in range(200):
        m = int(rng.integers(fleet.n))
        eligible = rng.random(fleet.n_pools) < 0.85
        pool_free = rng.integers(0, 30, fleet.n_pools)
        power_free = fleet.power_budget_w * rng.uniform(0.0, 1.0, fleet.n)
        g = int(rng.choice([1, 2, 4]))
        models = [fleet.pool_model_name[p] for p in fleet.module_pools[m]]
        prefer = (
            {model: int(rng.integers(0, 6)) for model in models} if rng.random() < 0.6 else None
        )
        replicas = int(rng.integers(0, 12))
        before = pool_free.copy()
        got = fleet.fit_pools(m, eligible, g, pool_free, power_free, replicas, prefer)
        assert got == _fit_pools_reference(
            fleet, m, eligible, g, pool_free, power_free, replicas, prefer
        )
        assert (pool_free == before).all()  # fit_pools only reads the free arrays
        pf, pw = pool_free.copy(), power_free.copy()
        fleet.consume(got, g, pf, pw)
        for p, n in got:
            assert pf[p] == pool_free[p] - n * g
        used = power_free[m] - pw[m]
        want = sum(n * g * fleet.pool_power_w[p] * fleet.pue[m] for p, n in got)
        assert used == pytest.approx(want)


def test_workload_state_replace_equals_dataclasses_replace_and_resets_total() -> None:
    import numpy as np

    fleet = FleetState(random_fleet(6, 2))
    ws = prepare(fleet, random_workloads(1, 4)[0], ())
    assert ws.total == int(ws.demand.sum())  # memoised on the original
    demand = ws.demand + 1
    copy = ws.replace(demand=demand)
    reference = dataclasses.replace(ws, demand=demand)
    for f in dataclasses.fields(ws):
        if f.init:
            assert getattr(copy, f.name) is getattr(reference, f.name), f.name
    assert copy.total == int(demand.sum()) != ws.total
    assert ws.demand is not demand  # the original is untouched
    with pytest.raises(TypeError, match="no field 'demnd'"):
        ws.replace(demnd=np.zeros(1))
