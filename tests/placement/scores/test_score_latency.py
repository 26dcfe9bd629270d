"""Latency term: latencyWeight * RTT / L, L = maxLatencyMs or 100 ms."""

from __future__ import annotations

import pytest
from tests.placement.factories import DE, IE, module, region, state, workload

from aifactory.placement import PlacementSettings
from aifactory.placement.explain import score_terms
from aifactory.placement.geo import rtt_ms
from aifactory.placement.scores import latency


@pytest.mark.parametrize(
    ("weight", "slo", "normaliser"),
    [(1.0, None, 100.0), (2.0, None, 100.0), (1.0, 50.0, 50.0), (0.0, 50.0, 50.0)],
)
def test_latency_cost(weight: float, slo: float | None, normaliser: float) -> None:
    wl = workload(regions=[region("eu-west", IE)], latency_weight=weight, max_latency_ms=slo)
    fleet, ws = state([module("fra", DE)], wl)
    rtt = rtt_ms(IE[1], IE[2], DE[1], DE[2], PlacementSettings())
    assert latency.normaliser(fleet.settings, wl) == normaliser
    cost = latency.cost(fleet, ws)
    assert cost is not None
    assert float(cost[0, 0]) == pytest.approx(weight * rtt / normaliser)
    term = score_terms(fleet, ws, 0, 0)[0]
    assert term.name == latency.NAME
    assert term.raw == pytest.approx(rtt)
    assert term.normalized == pytest.approx(100 * (1 - rtt / normaliser))
    assert term.weighted == pytest.approx(weight * rtt / normaliser)


def test_no_demand_no_latency_term() -> None:
    fleet, ws = state([module()], workload(replicas=2))
    assert latency.cost(fleet, ws) is None
    assert [t.name for t in score_terms(fleet, ws, 0, 0)] == ["Carbon"]
