"""Incremental mode (`place_one`): replica division across regions and modules."""

from __future__ import annotations

import pytest
from tests.placement.factories import (
    DE,
    FR,
    IE,
    IS,
    NO,
    SG,
    US,
    module,
    pool,
    region,
    workload,
)

from aifactory.placement import FleetState, PlacementSettings, place_one
from aifactory.placement.filters import free_gpus, latency
from aifactory.placement.geo import rtt_ms


def test_replicas_follow_their_regions() -> None:
    modules = [module("paris", FR), module("virginia", US), module("singapore", SG)]
    wl = workload(regions=[region("eu", FR, 2), region("us", US, 3), region("ap", SG, 1)])
    d = place_one(wl, modules)
    assert {a.module: dict(a.regions) for a in d.assignments} == {
        "paris": {"eu": 2},
        "virginia": {"us": 3},
        "singapore": {"ap": 1},
    }
    assert d.unplaced_replicas == 0 and d.replicas == 6
    expected = rtt_ms(FR[1], FR[2], FR[1], FR[2], PlacementSettings())
    assert d.latency_ms["eu"] == pytest.approx(expected)


def test_capacity_spills_to_next_best_module() -> None:
    modules = [
        module("cheap", DE, pools=[pool(count=3)], carbon_intensity=10.0),
        module("dear", DE, pools=[pool(count=8)], carbon_intensity=500.0),
    ]
    d = place_one(workload(replicas=5), modules)
    assert {a.module: a.replicas for a in d.assignments} == {"cheap": 3, "dear": 2}
    assert d.carbon_intensity == pytest.approx((3 * 10 + 2 * 500) / 5)


def test_gpus_per_replica_and_pool_breakdown() -> None:
    m = module("mixed", DE, pools=[pool("H100", 4), pool("A100", 4, power=400)])
    d = place_one(workload(replicas=3, gpus_per_replica=2), [m])
    # The lower-power pool fills first: 2 replicas on A100, 1 on H100.
    assert dict(d.assignments[0].gpus) == {"A100": 4, "H100": 2}


def test_min_modules_spreads_replicas() -> None:
    modules = [module(f"m{i}", DE, carbon_intensity=10.0 * (i + 1)) for i in range(4)]
    d = place_one(workload(replicas=6, min_modules=3), modules)
    assert len(d.assignments) == 3
    assert sum(a.replicas for a in d.assignments) == 6
    assert d.assignments[0].module == "m0" and d.assignments[0].replicas == 4


def test_spread_shortfall_costs_1000_per_module() -> None:
    modules = [module("only", DE, carbon_intensity=0.0)]
    d = place_one(workload(replicas=4, min_modules=3, carbon_weight=0.0), modules)
    assert d.unplaced_replicas == 0
    assert d.cost == pytest.approx(2 * 1000.0)


def test_unplaced_replicas_cost_and_message() -> None:
    modules = [
        module("a", DE, pools=[pool(count=2)]),
        module("b", DE, pools=[pool(count=8, allocated=8)]),
    ]
    d = place_one(workload(replicas=5, carbon_weight=0.0), modules)
    assert d.placed_replicas == 2 and d.unplaced_replicas == 3
    assert d.cost == pytest.approx(3 * 1000.0)
    insufficient = free_gpus.REASON_INSUFFICIENT.format(models="GPUs")
    assert d.message == (
        f"3/5 replicas unplaced; 1/2 modules are available: 1 {insufficient}. "
        "Allowed modules are full."
    )
    assert d.unplaced_regions == {"": 3}


def test_no_demand_places_on_carbon_only() -> None:
    modules = [
        module("green", IS, carbon_intensity=28.0, pue=1.1),
        module("grey", DE, carbon_intensity=380.0),
    ]
    d = place_one(workload(replicas=2), modules)
    assert [(a.module, dict(a.regions)) for a in d.assignments] == [("green", {})]
    assert d.cost == pytest.approx(2 * 28.0 * 1.1 / 500)
    assert d.latency_ms == {}


def test_latency_and_carbon_trade_off() -> None:
    # Oslo is further from Dublin than Paris but much cleaner; weights decide.
    modules = [
        module("paris", FR, carbon_intensity=300.0),
        module("oslo", NO, carbon_intensity=30.0),
    ]
    regions = [region("eu", IE, 1)]
    by_latency = place_one(workload(regions=regions, carbon_weight=0.0), modules)
    by_carbon = place_one(workload(regions=regions, latency_weight=0.0), modules)
    assert by_latency.assignments[0].module == "paris"
    assert by_carbon.assignments[0].module == "oslo"


def test_explanation_covers_every_module_of_a_small_fleet() -> None:
    modules = [module("near", IE), module("far", SG)]
    d = place_one(workload(regions=[region("eu", IE)], max_latency_ms=50), modules)
    assert d.explanation["near"].startswith("selected: 1 replica (eu=1); cost/replica eu ")
    assert d.explanation["far"] == "rejected: " + latency.REASON_LATENCY.format(ms=50, region="eu")


def test_explanation_is_bounded_on_large_fleets() -> None:
    modules = [module(f"m{i:03d}", DE, carbon_intensity=float(i)) for i in range(300)]
    fleet = FleetState(modules)
    d = place_one(workload(replicas=1), fleet)
    assert len(d.explanation) == 1 + fleet.settings.explain_alternatives
    assert d.explanation["m000"].startswith("selected")
    assert d.message == "300/300 modules are available."
    full = place_one(workload(replicas=1), fleet, explain_all=True)
    assert len(full.explanation) == 300


def test_zero_replicas() -> None:
    d = place_one(workload(replicas=0), [module()])
    assert d.assignments == () and d.cost == 0.0 and d.unplaced_replicas == 0


def test_empty_fleet() -> None:
    d = place_one(workload(replicas=2, min_modules=1), [])
    assert d.unplaced_replicas == 2
    assert d.cost == pytest.approx(3000.0)
    assert d.message.endswith("0/0 modules are available.")
