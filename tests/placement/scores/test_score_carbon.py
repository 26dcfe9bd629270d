"""Carbon term: carbonWeight * carbonIntensity * pue / 500."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import PlacementSettings
from aifactory.placement.explain import score_terms
from aifactory.placement.scores import carbon


@pytest.mark.parametrize(
    ("intensity", "pue", "weight", "expected", "normalized"),
    [
        (28.0, 1.15, 1.0, 28 * 1.15 / 500, 100 * (1 - 28 * 1.15 / 500)),
        (700.0, 1.5, 1.0, 700 * 1.5 / 500, 0.0),
        (400.0, 1.25, 0.5, 0.5 * 400 * 1.25 / 500, 0.0),
        (100.0, 1.0, 0.0, 0.0, 80.0),
    ],
)
def test_carbon_cost(
    intensity: float, pue: float, weight: float, expected: float, normalized: float
) -> None:
    fleet, ws = state([module(carbon_intensity=intensity, pue=pue)], workload(carbon_weight=weight))
    assert float(carbon.cost(fleet, ws)[0]) == pytest.approx(expected)
    assert float(ws.cost[0, 0]) == pytest.approx(expected)  # no demand: carbon only
    term = score_terms(fleet, ws, 0, 0)[-1]
    assert term.raw == pytest.approx(intensity * pue)
    assert term.normalized == pytest.approx(normalized)


def test_normaliser_is_configurable() -> None:
    fleet, ws = state(
        [module(carbon_intensity=100.0)],
        workload(),
        settings=PlacementSettings(carbon_normaliser=100.0),
    )
    assert float(carbon.cost(fleet, ws)[0]) == pytest.approx(1.0)
