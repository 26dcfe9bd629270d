"""Why a module got fewer replicas than it could: pools full (and by whom), power, spread,
hysteresis. The reasons are computed against the capacity every decision leaves."""

from __future__ import annotations

import pytest
from tests.placement.factories import FR, IE, NO, module, pool, region, state
from tests.placement.factories import workload as make_workload

from aifactory.placement import FleetState
from aifactory.placement.converge import place_incremental
from aifactory.placement.cycle import prepare
from aifactory.placement.explain import (
    REASON_KEPT,
    REASON_POOLS_FULL,
    REASON_SPREAD,
    REASON_STICKY,
    alloc_of,
    free_after,
    holders_of,
    shortfalls,
)


def _shortfalls(fleet: FleetState, workloads: list, key: str) -> dict[str, list[str]]:  # type: ignore[type-arg]
    result = place_incremental(workloads, fleet)
    pool_free, power_free = free_after(fleet, result.placements)
    d = result.decision(key)
    wl = next(w for w in workloads if w.key == key)
    ws = prepare(fleet, wl, ())
    return shortfalls(
        fleet,
        ws,
        alloc_of(fleet, ws, d),
        pool_free,
        power_free,
        holders=holders_of(result.placements),
        stability=d.stability,
    )


def test_a_full_pool_names_every_deployment_holding_it() -> None:
    # "a" (placed first, by name) takes 3 of near's 4 GPUs; "b" wants 3 near its users: 1 fits
    near = module("near", NO, pools=[pool("H100", 4)])
    far = module("far", FR, pools=[pool("H100", 16)])
    a = make_workload("ns/a", regions=[region("north", NO, 3)])
    b = make_workload("ns/b", regions=[region("north", NO, 3)])
    fleet = FleetState([near, far])
    found = _shortfalls(fleet, [a, b], "ns/b")
    assert found == {
        "near": [
            "north: 2 replica(s) on dearer far: "
            + REASON_POOLS_FULL.format(models="H100", usage="H100 4/4 in use (ns/a 3, ns/b 1)")
        ]
    }


def test_other_tenants_show_as_other_workloads() -> None:
    near = module("near", NO, pools=[pool("H100", 4, allocated=3)])
    far = module("far", FR, pools=[pool("H100", 16)])
    b = make_workload("ns/b", regions=[region("north", NO, 2)])
    found = _shortfalls(FleetState([near, far]), [b], "ns/b")
    assert found["near"] == [
        "north: 1 replica(s) on dearer far: no free H100: H100 4/4 in use (ns/b 1, other "
        "workloads 3)"
    ]


def test_power_budget_is_named_when_gpus_are_free_but_power_is_not() -> None:
    # 8 GPUs, but 2 kW at PUE 1 powers only 2 H100 (700 W)
    near = module("near", NO, pools=[pool("H100", 8)], budget_kw=2.0)
    far = module("far", FR, pools=[pool("H100", 16)])
    b = make_workload("ns/b", regions=[region("north", NO, 4)])
    found = _shortfalls(FleetState([near, far]), [b], "ns/b")
    (reason,) = found["near"]
    assert reason.startswith("north: 2 replica(s) on dearer far: power budget: 1.4/2.0 kW in use")
    assert reason.endswith("one more replica needs 0.7 kW")


def test_spread_keeps_a_replica_on_a_dearer_module() -> None:
    near = module("near", IE, pools=[pool("H100", 16)])
    far = module("far", FR, pools=[pool("H100", 16)])
    b = make_workload("ns/b", regions=[region("west", IE, 3)], min_modules=2)
    found = _shortfalls(FleetState([near, far]), [b], "ns/b")
    assert found == {
        "near": ["west: 1 replica(s) on dearer far: " + REASON_SPREAD.format(k=2, have=1)]
    }


@pytest.mark.parametrize(
    ("carbon", "expected"),
    [
        # far costs 0.016 more per replica (7.4%): a fresh placement is cheaper, by less than
        # the 10% hysteresis
        (108.0, REASON_KEPT.format(delta=0.016, stability="{stability}")),
        # 0.010 more: no more than the stickiness bonus, so no solve even proposes a move
        (105.0, REASON_STICKY.format(delta=0.010, bonus=0.01)),
    ],
)
def test_a_kept_running_placement_says_why_it_stays(carbon: float, expected: str) -> None:
    from aifactory.placement import CurrentAssignment, place_one

    near = module("near", IE, pools=[pool("H100", 16)])
    far = module("far", FR, pools=[pool("H100", 16)], carbon_intensity=carbon)
    wl = make_workload("ns/b", replicas=2, current=(CurrentAssignment("far", 2),))
    fleet, ws = state([near, far], wl)
    d = place_one(wl, fleet)
    assert d.kept_current and d.stability.startswith("kept")
    pool_free, power_free = free_after(fleet, [d])
    found = shortfalls(
        fleet, ws, alloc_of(fleet, ws, d), pool_free, power_free, stability=d.stability
    )
    reason = expected.replace("{stability}", d.stability)
    assert found == {"near": [f"2 replica(s) on dearer far: {reason}"]}
    if carbon == 108.0:
        assert "7.4% < 10%" in reason


def test_nothing_to_say_when_every_region_is_on_its_cheapest_module() -> None:
    near = module("near", IE, pools=[pool("H100", 16)])
    far = module("far", FR, pools=[pool("H100", 16)])
    b = make_workload("ns/b", regions=[region("west", IE, 3)])
    assert _shortfalls(FleetState([near, far]), [b], "ns/b") == {}


def test_unplaced_replicas_name_the_full_modules() -> None:
    only = module("only", IE, pools=[pool("H100", 2)])
    b = make_workload("ns/b", regions=[region("west", IE, 3)])
    found = _shortfalls(FleetState([only]), [b], "ns/b")
    assert found == {
        "only": ["west: 1 replica(s) found no module: no free H100: H100 2/2 in use (ns/b 2)"]
    }
