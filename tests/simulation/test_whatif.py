"""What-if: the diff a change would cause, computed with the operator's rules, applied nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.api import InferenceDeployment, SovereigntyPolicy
from aifactory.api.deployment import InferenceDeploymentStatus, ModulePlacement
from aifactory.simulation import load_scenario
from aifactory.simulation.whatif import (
    Change,
    WhatIfError,
    parse_change,
    policy_change,
    what_if,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "simulation"


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return load_scenario([SAMPLE])


def by(answer, ref):  # type: ignore[no-untyped-def]
    return next(d for d in answer.deployments if d.deployment == ref)


def test_nothing_changes_when_nothing_changes(scenario) -> None:  # type: ignore[no-untyped-def]
    answer = what_if(scenario, [])
    for d in answer.deployments:
        assert dict(d.before) == dict(d.after) and d.moved == 0, d.deployment
        assert d.cost_before == pytest.approx(d.cost_after)


def test_losing_a_module_moves_its_replicas_at_once(scenario) -> None:  # type: ignore[no-untyped-def]
    base = what_if(scenario, [])
    on_montreal = {d.deployment: d.before.get("montreal", 0) for d in base.deployments}
    assert sum(on_montreal.values()) > 0
    answer = what_if(scenario, [parse_change("lose-module", "montreal")])
    for d in answer.deployments:
        assert "montreal" not in d.after
        assert d.moved == d.at_once == on_montreal[d.deployment], d.deployment
        assert d.unplaced_after == 0
    assert answer.totals()["movedAtOnce"] == sum(on_montreal.values())


def test_a_cordon_moves_nothing(scenario) -> None:  # type: ignore[no-untyped-def]
    answer = what_if(scenario, [parse_change("cordon", "montreal")])
    assert answer.totals()["replicasMoved"] == 0
    assert all(dict(d.before) == dict(d.after) for d in answer.deployments)


def test_a_new_policy_forbids_cells_which_leave_at_once(scenario) -> None:  # type: ignore[no-untyped-def]
    policy = SovereigntyPolicy.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "SovereigntyPolicy",
            "metadata": {"name": "no-canada"},
            "spec": {"namespaceSelector": {}, "deniedCountries": ["CA"], "enforcement": "Enforce"},
        }
    )
    answer = what_if(scenario, [policy_change(policy)])
    copilot = by(answer, "us-apps/us-copilot")
    assert copilot.before.get("montreal", 0) > 0 and "montreal" not in copilot.after
    assert copilot.newly_forbidden and "in denied countries CA" in copilot.newly_forbidden[0]
    assert copilot.at_once == copilot.before["montreal"]


def test_scaling_demand_adds_replicas_without_moving_any(scenario) -> None:  # type: ignore[no-untyped-def]
    answer = what_if(scenario, [parse_change("scale-demand", "eu-west=2")])
    eu = by(answer, "eu-chat/eu-assistant")
    assert sum(eu.after.values()) > sum(eu.before.values())
    assert eu.moved == 0


def test_rebalance_takes_the_next_plan_to_its_end(scenario) -> None:  # type: ignore[no-untyped-def]
    forced = what_if(scenario, [parse_change("lose-module", "lulea")])
    planned = what_if(scenario, [parse_change("lose-module", "lulea")], rebalance=True)
    assert planned.totals()["costAfter"] <= forced.totals()["costAfter"] + 1e-9


def test_live_status_is_the_before(scenario) -> None:  # type: ignore[no-untyped-def]
    """With status, before is what runs (status.placements), not a fresh solve."""
    d = next(x for x in scenario.deployments if x.ref == "us-apps/us-copilot")
    status = InferenceDeploymentStatus(
        placements=[
            ModulePlacement(
                module="dallas",
                replicas=d.replicas_needed(),
                regions=dict(d.replicas_per_region()),
            )
        ]
    )
    running = d.model_copy(update={"status": status})
    others = tuple(
        x.model_copy(update={"status": InferenceDeploymentStatus()})
        for x in scenario.deployments
        if x.ref != d.ref
    )
    live = scenario.__class__(
        modules=scenario.modules,
        deployments=(running, *others),
        policies=scenario.policies,
        namespaces=scenario.namespaces,
    )
    answer = what_if(live, [parse_change("cordon", "ashburn")])
    copilot = by(answer, d.ref)
    assert dict(copilot.before) == {"dallas": d.replicas_needed()}
    assert isinstance(running, InferenceDeployment)


def test_bad_changes_are_refused(scenario) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WhatIfError, match="no module atlantis"):
        what_if(scenario, [Change("lose-module", "atlantis")])
    with pytest.raises(WhatIfError, match="no demand region mars"):
        what_if(scenario, [parse_change("scale-demand", "mars=2")])
    with pytest.raises(WhatIfError, match="REGION=FACTOR"):
        parse_change("scale-demand", "eu-west")
