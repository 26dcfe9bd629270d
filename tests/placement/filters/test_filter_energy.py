"""EnergyRules: minRenewableShare, maxCarbonIntensity and allowedSources."""

from __future__ import annotations

from typing import Any

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import Code
from aifactory.placement.filters import energy

GREEN = {"renewable_share": 0.9, "carbon_intensity": 30.0, "sources": frozenset({"hydro"})}
SOLAR_GRID = {
    "renewable_share": 0.4,
    "carbon_intensity": 380.0,
    "sources": frozenset({"solar", "grid"}),
}


@pytest.mark.parametrize(
    ("mod", "rules", "code", "reason"),
    [
        (GREEN, {}, Code.SUCCESS, None),
        (GREEN, {"min_renewable_share": 0.9, "max_carbon_intensity": 30}, Code.SUCCESS, None),
        (
            SOLAR_GRID,
            {"min_renewable_share": 0.5},
            Code.UNSCHEDULABLE,
            energy.REASON_RENEWABLE.format(share=0.5),
        ),
        (
            SOLAR_GRID,
            {"max_carbon_intensity": 200},
            Code.UNSCHEDULABLE,
            energy.REASON_CARBON.format(max=200),
        ),
        (
            SOLAR_GRID,
            {"allowed_sources": frozenset({"solar", "wind"})},
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            energy.REASON_SOURCES.format(sources="solar,wind"),
        ),
        (SOLAR_GRID, {"allowed_sources": frozenset({"solar", "grid"})}, Code.SUCCESS, None),
        # The static rule is reported before the live ones.
        (
            SOLAR_GRID,
            {"allowed_sources": frozenset({"hydro"}), "max_carbon_intensity": 100},
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            energy.REASON_SOURCES.format(sources="hydro"),
        ),
    ],
)
def test_energy(mod: dict[str, Any], rules: dict[str, Any], code: Code, reason: str | None) -> None:
    fleet, ws = state([module(**mod)], workload(**rules))
    status = energy.filter(fleet, ws).status(0)
    assert status.code == code
    assert status.reasons == ((reason,) if reason else ())
