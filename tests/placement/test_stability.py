"""Stickiness and the hysteresis rule, in both modes."""

from __future__ import annotations

import dataclasses

import pytest
from tests.placement.factories import DE, module, pool, workload

from aifactory.placement import (
    CurrentAssignment,
    ModuleView,
    WorkloadView,
    place_fleet,
    place_one,
)


def fleet(current_ci: float, other_ci: float, **current: object) -> list[ModuleView]:
    return [
        module("current", DE, carbon_intensity=current_ci, **current),  # type: ignore[arg-type]
        module("other", DE, carbon_intensity=other_ci),
    ]


def running(replicas: int = 2, where: str = "current") -> WorkloadView:
    return workload(replicas=replicas, current=(CurrentAssignment(where, replicas),))


@pytest.mark.parametrize("place", ["one", "fleet"])
@pytest.mark.parametrize(
    ("current_ci", "other_ci", "kept"),
    [
        (100.0, 100.0, True),  # a tie: stickiness keeps it
        (100.0, 95.0, True),  # 5% cheaper elsewhere: below the 10% hysteresis
        (100.0, 89.0, False),  # 11% cheaper: move
    ],
)
def test_hysteresis(place: str, current_ci: float, other_ci: float, kept: bool) -> None:
    modules = fleet(current_ci, other_ci)
    wl = running()
    d = place_one(wl, modules) if place == "one" else place_fleet([wl], modules).placements[0]
    assert d.kept_current is kept
    assert [a.module for a in d.assignments] == (["current"] if kept else ["other"])
    assert d.stability.startswith("kept" if kept else "replaced")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ready": False}, "breaks a hard rule: module not ready"),
        ({"pools": ()}, "breaks a hard rule"),
    ],
)
def test_broken_hard_rule_replaces_even_when_cheaper(change: dict[str, object], why: str) -> None:
    modules = fleet(10.0, 100.0, **change)
    d = place_one(running(), modules)
    assert not d.kept_current
    assert [a.module for a in d.assignments] == ["other"]
    assert why in d.stability


def test_cordon_keeps_what_runs() -> None:
    modules = fleet(100.0, 100.0, schedulable=False)
    d = place_one(running(), modules)
    assert d.kept_current and [a.module for a in d.assignments] == ["current"]
    # ... but places nothing new there.
    fresh = place_one(workload(replicas=2), modules)
    assert [a.module for a in fresh.assignments] == ["other"]


def test_gone_module_and_changed_demand_replace() -> None:
    modules = fleet(100.0, 100.0)
    assert "is gone" in place_one(running(where="nowhere"), modules).stability
    grown = dataclasses.replace(running(), replicas=3)
    d = place_one(grown, modules)
    assert "changed" in d.stability
    # Stickiness still keeps the running replicas where they are.
    assert {a.module: a.replicas for a in d.assignments} == {"current": 3}


def test_fleet_mode_reserves_kept_placements_first() -> None:
    # "a/new" would like "current" too, but "b/running" keeps it (hysteresis) and it has room
    # for two replicas only.
    modules = [
        module("current", DE, carbon_intensity=100.0, pools=[pool("H100", 2)]),
        module("other", DE, carbon_intensity=104.0),
    ]
    result = place_fleet(
        [workload("a/new", 1), dataclasses.replace(running(2), key="b/running")], modules
    )
    assert result.decision("b/running").kept_current
    assert [a.module for a in result.decision("a/new").assignments] == ["other"]


def test_fleet_mode_keeps_each_running_placement_on_the_pools_it_runs_on() -> None:
    # "a" runs on mixed's H100s, "b" (L40S only) on its L40S. Reserving "a" on the cheapest
    # pool first would take b's L40S and send b elsewhere for nothing (simulator finding).
    mods = [
        module("mixed", DE, pools=[pool("L40S", 2, memory=48, power=350), pool("H100", 2)]),
        module("spare", DE, carbon_intensity=1000.0, pools=[pool("L40S", 2, memory=48, power=350)]),
    ]
    a = workload("a/any", 2, current=(CurrentAssignment("mixed", 2, pools={"H100": 2}),))
    b = workload(
        "b/l40s",
        2,
        gpu_models=("L40S",),
        current=(CurrentAssignment("mixed", 2, pools={"L40S": 2}),),
    )
    result = place_fleet([a, b], mods)
    for key in ("a/any", "b/l40s"):
        d = result.decision(key)
        assert d.kept_current, d.stability
        assert [x.module for x in d.assignments] == ["mixed"]
    assert dict(result.decision("a/any").assignments[0].gpus) == {"H100": 2}
