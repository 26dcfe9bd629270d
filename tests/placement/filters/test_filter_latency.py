"""LatencySLO: a module may serve a region only within maxLatencyMs of it."""

from __future__ import annotations

from tests.placement.factories import DE, IE, IN, SG, module, region, state, workload

from aifactory.placement import PlacementSettings
from aifactory.placement.explain import module_status
from aifactory.placement.filters import latency
from aifactory.placement.geo import rtt_ms


def test_rtt_within_slo() -> None:
    regions = [region("eu-west", IE), region("ap-south", IN)]
    fleet, ws = state([module("frankfurt", DE)], workload(regions=regions, max_latency_ms=50))
    v = latency.filter(fleet, ws)
    assert v.ok[:, 0].tolist() == [True, False]
    assert v.reasons[1] == latency.REASON_LATENCY.format(ms=50, region="ap-south")
    expected = rtt_ms(IE[1], IE[2], DE[1], DE[2], PlacementSettings())
    assert abs(float(ws.rtt[0, 0]) - expected) < 1e-9  # type: ignore[index]


def test_no_slo_no_filter() -> None:
    fleet, ws = state([module("sg", SG)], workload(regions=[region("eu-west", IE)]))
    assert latency.filter(fleet, ws).ok.all()


def test_module_serving_no_region_is_infeasible() -> None:
    _fleet, ws = state(
        [module("sg", SG)], workload(regions=[region("eu-west", IE)], max_latency_ms=50)
    )
    assert not ws.feasible.any()
    assert module_status(ws, 0)[0].reasons == (
        latency.REASON_LATENCY.format(ms=50, region="eu-west"),
    )
