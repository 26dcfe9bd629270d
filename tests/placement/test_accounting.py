"""Carbon accounting: gCO2e/h of a placement, its latency-only twin, and the RTT paid."""

from __future__ import annotations

import pytest
from tests.placement.factories import DE, FR, IE, IS, PL, module, pool, region, workload

from aifactory.placement import (
    CurrentAssignment,
    FleetState,
    place_fleet,
    place_one,
    place_sequential,
)
from aifactory.placement.accounting import (
    account,
    account_fleet,
    grams_per_hour,
    latency_only,
    mean_rtt_ms,
)


def test_grams_per_hour_is_gpus_times_power_times_pue_times_intensity() -> None:
    mods = [
        module("green", IS, carbon_intensity=28.0, pue=1.15, pools=[pool("H100", 8, power=700)])
    ]
    fleet = FleetState(mods)
    d = place_one(workload(replicas=3, gpus_per_replica=2), fleet)
    # 6 GPUs x 700 W x 1.15 x 28 g/kWh / 1000 = 135.24 gCO2e/h
    assert grams_per_hour(fleet, d) == pytest.approx(6 * 700 * 1.15 * 28 / 1000)


def test_each_pool_counts_at_its_own_board_power() -> None:
    pools = [pool("L4", 2, memory=24, power=72), pool("H100", 8, power=700)]
    mods = [module("mixed", DE, carbon_intensity=400.0, pue=1.0, pools=pools)]
    fleet = FleetState(mods)
    d = place_one(workload(replicas=4), fleet)
    assert dict(d.assignments[0].gpus) == {"L4": 2, "H100": 2}
    assert grams_per_hour(fleet, d) == pytest.approx((2 * 72 + 2 * 700) * 400 / 1000)


def test_mean_rtt_weights_regions_by_replicas() -> None:
    fleet = FleetState([module("paris", FR)])
    d = place_one(workload(regions=[region("a", IE, 3), region("b", DE, 1)]), fleet)
    lat = d.assignments[0].latency_ms
    assert mean_rtt_ms(d) == pytest.approx((3 * lat["a"] + lat["b"]) / 4)
    assert mean_rtt_ms(place_one(workload(replicas=2), fleet)) is None


def test_carbon_awareness_saves_grams_and_costs_latency() -> None:
    # Users in Warsaw; a coal-heavy module next door and a geothermal one far away.
    mods = [
        module("warsaw", PL, carbon_intensity=700.0, pue=1.2),
        module("reykjavik", IS, carbon_intensity=28.0, pue=1.1),
    ]
    wl = workload(regions=[region("pl", PL, 2)], carbon_weight=1.0, latency_weight=1.0)
    fleet = FleetState(mods)
    decided = place_fleet([wl], fleet)
    assert [a.module for a in decided.placements[0].assignments] == ["reykjavik"]
    acc = account_fleet(fleet, [wl], (), decided, solve=place_fleet)["ns/app"]
    assert acc.grams_per_hour == pytest.approx(2 * 700 * 1.1 * 28 / 1000)
    assert acc.latency_only_grams_per_hour == pytest.approx(2 * 700 * 1.2 * 700 / 1000)
    assert acc.saved_grams_per_hour > 0
    assert acc.rtt_paid_ms is not None and acc.rtt_paid_ms > 20
    assert acc.to_dict() == {
        "gramsPerHour": round(acc.grams_per_hour, 3),
        "latencyOnlyGramsPerHour": round(acc.latency_only_grams_per_hour, 3),
        "meanRttMs": round(acc.mean_rtt_ms or 0, 3),
        "latencyOnlyMeanRttMs": round(acc.latency_only_mean_rtt_ms or 0, 3),
    }


def test_a_latency_only_deployment_pays_nothing() -> None:
    mods = [
        module("warsaw", PL, carbon_intensity=700.0),
        module("reykjavik", IS, carbon_intensity=28.0),
    ]
    wl = workload(regions=[region("pl", PL, 1)], carbon_weight=0.0)
    fleet = FleetState(mods)
    decided = place_sequential([wl], fleet)
    acc = account_fleet(fleet, [wl], (), decided, solve=place_sequential)["ns/app"]
    assert acc.saved_grams_per_hour == 0 and acc.rtt_paid_ms == 0


def test_counterfactual_competes_for_the_same_capacity() -> None:
    # The near (dirty) module has room for one replica: carbon-blind twins cannot both use it.
    mods = [
        module("near", PL, carbon_intensity=700.0, pools=[pool("H100", 1)]),
        module("far", IS, carbon_intensity=28.0, pools=[pool("H100", 4)]),
    ]
    wls = [workload(f"ns/{k}", regions=[region("pl", PL, 1)]) for k in ("a", "b")]
    fleet = FleetState(mods)
    decided = place_fleet(wls, fleet)
    assert all(d.assignments[0].module == "far" for d in decided.placements)
    accounts = account_fleet(fleet, wls, (), decided, solve=place_fleet)
    blind = sorted(a.latency_only_grams_per_hour for a in accounts.values())
    assert blind == pytest.approx([700 * 28 / 1000, 700 * 700 / 1000])


def test_latency_only_twin() -> None:
    wl = workload(
        regions=[region("pl", PL, 1)],
        carbon_weight=2.0,
        latency_weight=0.0,
        current=(CurrentAssignment("green", 1, {"pl": 1}),),
    )
    twin = latency_only(wl)
    assert (twin.carbon_weight, twin.latency_weight, twin.current) == (0.0, 1.0, ())
    assert twin.regions == wl.regions and twin.key == wl.key


def test_account_refuses_decisions_of_different_deployments() -> None:
    fleet = FleetState([module("m", DE)])
    a = place_one(workload("ns/a"), fleet)
    b = place_one(workload("ns/b"), fleet)
    with pytest.raises(ValueError, match="different deployments"):
        account(fleet, a, b)
