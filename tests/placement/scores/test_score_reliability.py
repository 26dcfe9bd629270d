"""Reliability term: reliabilityWeight * (1 - readyFraction) / 0.01; weight 0 adds nothing."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import PlacementSettings, place_one
from aifactory.placement.explain import score_terms
from aifactory.placement.scores import reliability


@pytest.mark.parametrize(
    ("fraction", "weight", "expected"),
    [
        (1.0, 1.0, 0.0),
        (0.99, 1.0, 1.0),
        (0.999, 2.0, 0.2),
        (0.9, 0.5, 5.0),
    ],
)
def test_reliability_cost(fraction: float, weight: float, expected: float) -> None:
    fleet, ws = state(
        [module(ready_fraction=fraction, carbon_intensity=100.0)],
        workload(reliability_weight=weight),
    )
    cost = reliability.cost(fleet, ws)
    assert cost is not None and float(cost[0]) == pytest.approx(expected)
    carbon_only = 100.0 / 500
    assert float(ws.cost[0, 0]) == pytest.approx(carbon_only + expected)
    term = score_terms(fleet, ws, 0, 0)[-1]
    assert term.name == reliability.NAME
    assert term.raw == pytest.approx(100 * (1 - fraction))
    assert term.weighted == pytest.approx(expected)


def test_weight_zero_leaves_costs_exactly_as_they_were() -> None:
    fleet, ws = state([module(ready_fraction=0.5, carbon_intensity=100.0)], workload())
    assert reliability.cost(fleet, ws) is None
    assert float(ws.cost[0, 0]) == 100.0 / 500
    assert [t.name for t in score_terms(fleet, ws, 0, 0)] == ["Carbon"]


def test_normaliser_is_configurable() -> None:
    fleet, ws = state(
        [module(ready_fraction=0.9)],
        workload(reliability_weight=1.0),
        settings=PlacementSettings(reliability_normaliser=0.1),
    )
    cost = reliability.cost(fleet, ws)
    assert cost is not None and float(cost[0]) == pytest.approx(1.0)


def test_with_a_weight_flaky_modules_lose_work_to_steady_ones() -> None:
    flaky = module("flaky", carbon_intensity=100.0, ready_fraction=0.98)
    steady = module("steady", carbon_intensity=150.0, ready_fraction=1.0)
    assert {a.module for a in place_one(workload(replicas=1), [flaky, steady]).assignments} == {
        "flaky"
    }
    chosen = place_one(workload(replicas=1, reliability_weight=1.0), [flaky, steady])
    assert {a.module for a in chosen.assignments} == {"steady"}
