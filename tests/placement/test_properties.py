"""Property tests over random fleets, deployments and policies.

Whatever the input: no decision breaks a hard rule (checked by an independent referee), no
pool or power budget is oversubscribed, the reported cost is the brief's cost, and the same
input (in any order) gives the same output.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from tests.placement.checks import brief_cost, violations
from tests.placement.strategies import instances

from aifactory.placement import (
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    place_fleet,
    place_one,
    place_sequential,
)

Instance = tuple[list[ModuleView], list[WorkloadView], list[PolicyView]]
GREEDY_ONLY = PlacementSettings(fleet_solver="greedy")
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(instances())
def test_fleet_mode_keeps_every_hard_rule(inst: Instance) -> None:
    modules, wls, pols = inst
    result = place_fleet(wls, modules, pols)
    assert violations(result.placements, modules, wls, pols) == []
    by_key = {w.key: w for w in wls}
    for d in result.placements:
        assert abs(d.cost - brief_cost(d, by_key[d.deployment], modules)) < 1e-6
    assert abs(result.total_cost - sum(d.cost for d in result.placements)) < 1e-6
    for usage in result.modules:
        assert 0 <= usage.gpus_used <= usage.gpus_total


@PROPS
@given(instances())
def test_greedy_fleet_solver_keeps_every_hard_rule(inst: Instance) -> None:
    # The path large fleets take (no MILP), exercised on small random instances.
    modules, wls, pols = inst
    result = place_fleet(wls, modules, pols, settings=GREEDY_ONLY)
    assert result.solver == "greedy"
    assert violations(result.placements, modules, wls, pols) == []
    assert result.to_dict() == place_fleet(wls, modules, pols, settings=GREEDY_ONLY).to_dict()


@PROPS
@given(instances())
def test_incremental_modes_keep_every_hard_rule(inst: Instance) -> None:
    modules, wls, pols = inst
    result = place_sequential(wls, modules, pols)
    assert violations(result.placements, modules, wls, pols) == []
    for wl in wls:
        d = place_one(wl, modules, pols)
        assert violations([d], modules, [wl], pols) == []
        assert abs(d.cost - brief_cost(d, wl, modules)) < 1e-6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_output_is_deterministic_whatever_the_input_order(inst: Instance) -> None:
    modules, wls, pols = inst
    first = place_fleet(wls, modules, pols).to_dict()
    rng = random.Random(0)
    shuffled = (
        rng.sample(wls, len(wls)),
        rng.sample(modules, len(modules)),
        rng.sample(pols, len(pols)),
    )
    assert place_fleet(*shuffled).to_dict() == first
    assert place_fleet(wls, modules, pols).to_dict() == first
    seq = place_sequential(wls, modules, pols).to_dict()
    assert place_sequential(*shuffled).to_dict() == seq
