"""The fleet-wide solve's cheaper entry points give the same placements as `place_fleet`.

The simulator replays thousands of fleet solves a year: it prepares each deployment once per
step (`place_prepared`), asks for no explanations (`explain=False`) and swaps running
placements without re-validating the deployment (`WorkloadView.with_current`). Each must
change nothing but the work done.
"""

from __future__ import annotations

import dataclasses

import pytest

from aifactory.placement import place_fleet
from aifactory.placement.cycle import prepare
from aifactory.placement.model import CurrentAssignment
from aifactory.placement.optimize import place_prepared
from aifactory.placement.result import FleetDecision
from aifactory.placement.state import FleetState
from aifactory.placement.synthetic import (
    congest,
    random_fleet,
    random_workloads,
    standard_policies,
)


def _placements(res: FleetDecision) -> list[tuple[str, str, tuple[tuple[str, int], ...]]]:
    return [
        (
            d.deployment,
            d.stability,
            tuple((a.module, a.replicas) for a in d.assignments),
        )
        for d in res.placements
    ]


@pytest.mark.parametrize("seed", range(3))
def test_explain_false_changes_no_placement_and_leaves_explanations_empty(seed: int) -> None:
    modules = random_fleet(15, seed)
    wls = congest(modules, random_workloads(25, 100 + seed), 1.5)
    pols = standard_policies()
    full = place_fleet(wls, modules, pols, prove=False)
    bare = place_fleet(wls, modules, pols, prove=False, explain=False)
    assert _placements(bare) == _placements(full)
    assert [d.cost for d in bare.placements] == [d.cost for d in full.placements]
    assert [d.unplaced_regions for d in bare.placements] == [
        d.unplaced_regions for d in full.placements
    ]
    assert bare.total_cost == full.total_cost
    assert any(d.explanation for d in full.placements)
    assert all(not d.explanation and not d.message for d in bare.placements)


@pytest.mark.parametrize("seed", range(3))
def test_place_prepared_equals_place_fleet(seed: int) -> None:
    modules = random_fleet(15, seed)
    wls = congest(modules, random_workloads(25, 200 + seed), 1.5)
    pols = standard_policies()
    fleet = FleetState(modules)
    states = sorted((prepare(fleet, wl, pols) for wl in wls), key=lambda ws: ws.key)
    ours = place_prepared(fleet, states)
    theirs = place_fleet(wls, FleetState(modules), pols)
    assert _placements(ours) == _placements(theirs)
    assert ours.total_cost == pytest.approx(theirs.total_cost)
    assert ours.lower_bound == pytest.approx(theirs.lower_bound)


def test_place_prepared_refuses_unsorted_or_duplicate_keys() -> None:
    modules = random_fleet(5, 1)
    wls = random_workloads(3, 7)
    fleet = FleetState(modules)
    states = sorted((prepare(fleet, wl, ()) for wl in wls), key=lambda ws: ws.key)
    with pytest.raises(ValueError, match="unique and sorted"):
        place_prepared(fleet, list(reversed(states)))
    with pytest.raises(ValueError, match="unique and sorted"):
        place_prepared(fleet, [states[0], states[0]])


def test_with_current_equals_dataclasses_replace() -> None:
    wl = random_workloads(1, 3)[0]
    current = (CurrentAssignment("m-1", wl.replicas, {}, {}),)
    assert wl.with_current(current) == dataclasses.replace(wl, current=current)
    assert wl.with_current(current).current == current
    assert wl.current == ()  # the original is untouched
