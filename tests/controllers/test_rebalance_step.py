"""Rebalancing steps: bounded by the disruption budget, every region stays fully served."""

from __future__ import annotations

import pytest

from aifactory.controllers.rebalance import step_towards
from aifactory.placement import Assignment, CurrentAssignment, Decision


def target(*assignments: tuple[str, dict[str, int]]) -> Decision:
    return Decision(
        deployment="ns/d",
        replicas=sum(sum(r.values()) for _, r in assignments),
        unplaced_replicas=0,
        assignments=tuple(Assignment(m, sum(r.values()), r) for m, r in assignments),
        explanation={},
        cost=0.0,
    )


def served(placement: tuple[CurrentAssignment, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in placement:
        for r, k in a.regions.items():
            out[r] = out.get(r, 0) + k
    return out


@pytest.mark.parametrize("budget", [1, 2, 3, 10])
def test_moves_at_most_the_budget_and_keeps_regions_served(budget: int) -> None:
    current = (
        CurrentAssignment("frankfurt", 3, {"eu": 3}),
        CurrentAssignment("paris", 1, {"eu": 1}),
    )
    step = step_towards(current, target(("oslo", {"eu": 4})), budget)
    moved = sum(n for *_, n in step.moves)
    assert moved == min(budget, 4)
    assert served(step.placement) == {"eu": 4}
    assert step.complete == (budget >= 4)
    # largest surplus first: frankfurt gives before paris
    assert step.moves[0][1] == "frankfurt"


def test_no_moves_when_already_at_target() -> None:
    current = (CurrentAssignment("oslo", 2, {"eu": 2}),)
    step = step_towards(current, target(("oslo", {"eu": 2})), 2)
    assert step.moves == [] and step.complete


def test_moves_stay_within_their_region() -> None:
    current = (CurrentAssignment("a", 2, {"eu": 1, "us": 1}), CurrentAssignment("b", 1, {"us": 1}))
    step = step_towards(current, target(("b", {"eu": 1, "us": 2})), 5)
    assert all(r in {"eu", "us"} for r, *_ in step.moves)
    assert served(step.placement) == {"eu": 1, "us": 2}
    assert {a.module: a.replicas for a in step.placement} == {"b": 3}


def test_deployments_without_regions_move_whole_replicas() -> None:
    current = (CurrentAssignment("a", 3),)
    goal = Decision(
        deployment="ns/d",
        replicas=3,
        unplaced_replicas=0,
        assignments=(Assignment("b", 3, {}),),
        explanation={},
        cost=0.0,
    )
    step = step_towards(current, goal, 2)
    assert {a.module: a.replicas for a in step.placement} == {"a": 1, "b": 2}
    assert not step.complete
