"""The repair of a rounded LP answer under congestion: every GPU is taken, and what a replica
is worth differs (below a guaranteed count 10,000, a module a deployment lacks for its spread
+1000, any other 1000). Each test seeds the answer rounding could leave, where the free-room
fills find nothing, and checks the repair makes the trade the objective asks for.

Pure logic on the engine's internals (no cluster): the fleet-wide tests in test_optimality.py
and test_scale.py check the whole solver against exact optima; these pin the moves that close
the gap at 1,000 x 5,000 (bench/placement.py), where no exact solve is affordable.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.placement.factories import DE, module, pool, region, workload

from aifactory.placement.model import WorkloadView
from aifactory.placement.optimize import (
    Solution,
    _build_problem,
    _Greedy,
    _objective,
    _repair,
    _seed,
    _states,
    _with_cands,
)


def _run(
    modules: list[tuple[str, int]],
    workloads: list[WorkloadView],
    seeded: dict[str, dict[str, int]],
) -> tuple[dict[str, dict[str, int]], float, float]:
    """Repair `seeded` (deployment -> module -> replicas, all from region 0) on modules of
    the given GPU counts; the repaired counts and the objective before and after."""
    mods = [module(name, DE, pools=[pool(count=gpus)]) for name, gpus in modules]
    fleet, states = _states(workloads, mods, (), None)
    prob = _with_cands(_build_problem(fleet, states))
    index = {name: i for i, name in enumerate(fleet.names)}
    key = {ws.key: d for d, ws in enumerate(states)}
    sol: dict[int, Solution] = {}
    for name, counts in seeded.items():
        alloc = {(0, index[m]): k for m, k in counts.items()}
        parts = {
            index[m]: [(int(np.flatnonzero(fleet.pool_module == index[m])[0]), k)]
            for m, k in counts.items()
        }
        sol[key[name]] = (alloc, parts)
    active = list(range(len(states)))
    before = sum(_objective(prob, d, sol.get(d, ({}, {}))[0]) for d in active)
    greedy = _Greedy(prob, active, fleet.pool_free.copy(), fleet.power_free_w.copy())
    _seed(greedy, sol)
    out = _repair(greedy)
    after = sum(_objective(prob, d, out[d][0]) for d in active)
    counts_out = {
        states[d].key: {fleet.names[m]: k for (_, m), k in out[d][0].items() if k} for d in active
    }
    return counts_out, before, after


def test_a_replica_below_its_guaranteed_count_displaces_one_above_anothers() -> None:
    big = workload("a/big", regions=[region("eu", DE, 2)])
    small = workload("b/small", regions=[region("eu", DE, 1)], min_replicas=1)
    got, before, after = _run([("m1", 2)], [big, small], {"a/big": {"m1": 2}})
    assert got == {"a/big": {"m1": 1}, "b/small": {"m1": 1}}
    # 10,000 for the replica below its guarantee, 1000 for the one above: placement costs
    # of one replica are normalised terms, well below 1.
    assert before - after == pytest.approx(9000, abs=1.0)


def test_a_deployment_short_of_modules_swaps_a_replica_with_another_deployment() -> None:
    spread = workload("a/spread", regions=[region("eu", DE, 2)], min_modules=2)
    other = workload("b/other", regions=[region("eu", DE, 2)])
    got, before, after = _run(
        [("m1", 2), ("m2", 2)],
        [spread, other],
        {"a/spread": {"m1": 2}, "b/other": {"m2": 2}},
    )
    assert got["a/spread"] == {"m1": 1, "m2": 1}
    assert sum(got["b/other"].values()) == 2
    assert after < before - 999


def test_a_partly_placed_deployment_short_of_modules_takes_a_replica_above_a_guarantee() -> None:
    spread = workload("a/spread", regions=[region("eu", DE, 3)], min_modules=2)
    other = workload("b/other", regions=[region("eu", DE, 2)], min_replicas=1)
    got, before, after = _run(
        [("m1", 1), ("m2", 2)],
        [spread, other],
        {"a/spread": {"m1": 1}, "b/other": {"m2": 2}},
    )
    assert got == {"a/spread": {"m1": 1, "m2": 1}, "b/other": {"m2": 1}}
    assert after < before - 999


def test_nothing_is_displaced_for_a_replica_worth_no_more_than_it() -> None:
    """Both above their guaranteed counts and spread: a displacement would only move the
    unplaced cost from one deployment to the other."""
    first = workload("a/first", regions=[region("eu", DE, 2)])
    second = workload("b/second", regions=[region("eu", DE, 2)], min_replicas=1)
    seeded = {"a/first": {"m1": 1}, "b/second": {"m1": 1}}
    got, before, after = _run([("m1", 2)], [first, second], seeded)
    assert got == seeded
    assert after == before
