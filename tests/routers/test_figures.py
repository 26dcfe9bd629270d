"""Mean RTT and gCO2e per 1,000 requests, per tier and blended."""

from __future__ import annotations

import pytest

from aifactory.api import ModulePlacement
from aifactory.routers.figures import (
    Figures,
    ModuleFacts,
    blend,
    mean_rtt_ms,
    placement_grams_per_hour,
    region_rtt_ms,
)

RTT = {("eu-west", "paris"): 13.0, ("eu-west", "oslo"): 21.0, ("us-south", "dallas"): 7.0}


def rtt(region: str, module: str) -> float:
    return RTT[(region, module)]


def test_mean_rtt_weighs_regions_by_requests_and_modules_by_weight() -> None:
    demand = {"eu-west": 300.0, "us-south": 100.0}
    weights = {"eu-west": {"paris": 0.5, "oslo": 0.5}, "us-south": {"dallas": 1.0}}
    # eu-west: 17 ms for 300 rps, us-south: 7 ms for 100 rps
    assert mean_rtt_ms(demand, weights, rtt) == pytest.approx((300 * 17 + 100 * 7) / 400)
    assert region_rtt_ms("eu-west", weights, rtt) == pytest.approx(17.0)
    # a region without routes does not count (its requests are not served anywhere yet)
    assert mean_rtt_ms(demand, {"us-south": {"dallas": 1.0}}, rtt) == pytest.approx(7.0)
    assert mean_rtt_ms(demand, {}, rtt) is None


def test_grams_per_1000_requests() -> None:
    facts = {
        "paris": ModuleFacts(48.86, 2.35, 1.25, 56.0, {"L4": 72.0, "H100": 700.0}),
        "oslo": ModuleFacts(59.91, 10.75, 1.15, 30.0, {"H100": 700.0}),
    }
    placements = [
        ModulePlacement(module="paris", replicas=4, gpus={"L4": 4}),
        ModulePlacement(module="oslo", replicas=2),  # no pools known: replicas x gpusPerReplica
    ]
    gph = placement_grams_per_hour(placements, 2, facts)
    assert gph == pytest.approx(4 * 72 * 1.25 * 56 / 1000 + 4 * 700 * 1.15 * 30 / 1000)
    fig = Figures(100.0, 10.0, gph)
    assert fig.grams_per_1000_requests == pytest.approx(gph / (100 * 3600) * 1000)
    assert Figures(0.0, None, gph).grams_per_1000_requests is None


def test_blend_adds_requests_and_grams_and_weighs_rtt() -> None:
    small = Figures(400.0, 10.0, 200.0)
    large = Figures(100.0, 60.0, 300.0)
    both = blend([small, large])
    assert both.requests_per_second == 500.0
    assert both.mean_rtt_ms == pytest.approx((400 * 10 + 100 * 60) / 500)
    assert both.grams_per_hour == 500.0
    assert both.to_dict()["gramsPer1000Requests"] == pytest.approx(500 / (500 * 3600) * 1000, 1e-3)
