"""`converge`: the operator's incremental placement, then its rebalancer's plans with hysteresis,
replayed offline until nothing moves (`aifactoryctl place --mode operator`)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.placement.factories import FR, IE, NO, module, pool, region
from tests.placement.factories import workload as make_workload

from aifactory.controllers.planner import step as planner_step
from aifactory.placement import CurrentAssignment, FleetState, PlacementSettings, place_fleet
from aifactory.placement.converge import (
    cells_of,
    converge,
    operator_order,
    place_incremental,
    step_towards,
)

MODULES = ("a", "b", "c", "d")
REGIONS = ("", "r1", "r2")


@st.composite
def cell_maps(draw: st.DrawFn) -> dict[tuple[str, str], int]:
    keys = draw(
        st.lists(st.tuples(st.sampled_from(REGIONS), st.sampled_from(MODULES)), unique=True)
    )
    return {k: draw(st.integers(1, 6)) for k in keys}


@settings(max_examples=300, deadline=None)
@given(
    current=cell_maps(),
    target=cell_maps(),
    budget=st.integers(1, 4),
    extra=st.dictionaries(st.sampled_from(REGIONS), st.integers(-3, 3)),
)
def test_step_is_the_operator_planners_step(
    current: dict[tuple[str, str], int],
    target: dict[tuple[str, str], int],
    budget: int,
    extra: dict[str, int],
) -> None:
    """The offline model moves replicas exactly as the operator's planner does."""
    wanted = {}
    for r in REGIONS:
        aim = sum(k for (rr, _), k in target.items() if rr == r)
        if aim or r in extra:
            wanted[r] = max(0, aim + extra.get(r, 0))
    ours = step_towards(current, target, wanted, budget)
    theirs = planner_step(current, target, wanted, {}, budget=budget, moves_allowed=True)
    assert ours == theirs.cells


def test_operator_order_is_priority_then_name() -> None:
    low = make_workload("b/low", priority=0)
    high = make_workload("z/high", priority=100)
    first = make_workload("a/first", priority=0)
    assert [w.key for w in operator_order([low, high, first])] == ["z/high", "a/first", "b/low"]


def test_incremental_places_higher_priority_first() -> None:
    # one GPU near the users: the higher-priority deployment gets it whatever the names
    near = module("near", NO, pools=[pool("H100", 1)])
    far = module("far", FR, pools=[pool("H100", 8)])
    a = make_workload("a/app", regions=[region("north", NO, 1)])
    z = make_workload("z/app", regions=[region("north", NO, 1)], priority=10)
    result = place_incremental([a, z], FleetState([near, far]))
    assert [x.module for x in result.decision("z/app").assignments] == ["near"]
    assert [x.module for x in result.decision("a/app").assignments] == ["far"]


def test_running_placement_moves_in_budgeted_steps_when_the_plan_beats_hysteresis() -> None:
    # 5 replicas run on a far, dirty module; near and clean is free: 2 move per rebalance
    near = module("near", IE, pools=[pool("H100", 16)], carbon_intensity=30.0)
    far = module("far", FR, pools=[pool("H100", 16)], carbon_intensity=400.0)
    wl = make_workload(
        "ns/app",
        regions=[region("west", IE, 5)],
        current=(CurrentAssignment("far", 5, {"west": 5}),),
    )
    conv = converge([wl], [near, far], disruption_budget=2)
    assert conv.converged
    assert cells_of(conv.incremental.decision("ns/app"), has_demand=True) == {("west", "far"): 5}
    assert cells_of(conv.result.decision("ns/app"), has_demand=True) == {("west", "near"): 5}
    assert conv.rounds == 3 and conv.moved == {"ns/app": 5}
    assert conv.result.decision("ns/app").stability.startswith("moved 5 replica(s)")


def test_running_placement_stays_when_the_plan_gains_less_than_hysteresis() -> None:
    near = module("near", IE, pools=[pool("H100", 16)], carbon_intensity=100.0)
    far = module("far", IE, pools=[pool("H100", 16)], carbon_intensity=110.0)
    wl = make_workload("ns/app", replicas=4, current=(CurrentAssignment("far", 4),))
    conv = converge([wl], [near, far])
    assert conv.converged and conv.rounds == 0 and conv.moved == {}
    assert cells_of(conv.result.decision("ns/app"), has_demand=False) == {("", "far"): 4}
    stability = conv.result.decision("ns/app").stability
    assert stability.startswith("stays where it was first placed; kept:")
    assert "< 10%" in stability
    # a lower hysteresis lets the rebalancer move it
    conv = converge(
        [wl], [near, far], settings=PlacementSettings(hysteresis=0.02), disruption_budget=4
    )
    assert cells_of(conv.result.decision("ns/app"), has_demand=False) == {("", "near"): 4}


def test_a_plan_that_only_helps_another_deployment_moves_nothing_running() -> None:
    """Hysteresis is per deployment: `a` keeps the clean module it took first, so `b`, which
    only that module could serve, stays unplaced, although the fleet optimum swaps them."""
    near = module("near", NO, pools=[pool("H100", 2)], carbon_intensity=50.0)
    far = module("far", FR, pools=[pool("H100", 8)], carbon_intensity=100.0)
    a = make_workload("ns/a", replicas=2)
    b = make_workload("ns/b", regions=[region("north", NO, 2)], max_latency_ms=5.0)
    conv = converge([a, b], [near, far])
    assert conv.result.decision("ns/b").unplaced_replicas == 2
    optimum = place_fleet([a, b], [near, far])
    assert optimum.decision("ns/b").unplaced_replicas == 0
    assert conv.result.total_cost > optimum.total_cost
    assert conv.result.lower_bound is not None
    assert conv.result.lower_bound <= conv.result.total_cost
