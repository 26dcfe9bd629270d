"""The reconcile planner's rules, table-driven like the filter plugins' tests.

Each rule of planner.py's docstring has its cases here: make-before-break for every reason a
replica leaves, the two exceptions that remove at once, the disruption budget, replicas with
nowhere to go, never acting on a cluster we cannot see, Pending replicas, conditions.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aifactory.api import InferenceDeployment
from aifactory.controllers import planner
from aifactory.controllers.planner import (
    Inputs,
    MemberAction,
    MemberState,
    ModuleUse,
    Settings,
    plan,
    step,
)
from aifactory.placement import Assignment, Decision

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def infd(
    replicas: int = 4, regions: dict[str, float] | None = None, **spec: Any
) -> InferenceDeployment:
    body: dict[str, Any] = {
        "model": {"name": "m", "image": "registry.example/m:1"},
        "replicas": {"fixed": replicas},
        **spec,
    }
    if regions:
        body["replicas"] = {"min": 0, "max": 100}
        body["throughputPerReplica"] = 1
        body["demand"] = {
            "regions": [
                {
                    "name": r,
                    "country": "IE",
                    "latitude": 53,
                    "longitude": -6,
                    "requestsPerSecond": v,
                }
                for r, v in regions.items()
            ]
        }
    return InferenceDeployment.model_validate(
        {"metadata": {"name": "d", "namespace": "ns", "generation": 3, "uid": "u1"}, "spec": body}
    )


def decision(cells: dict[str, int], wanted: int | None = None, message: str = "") -> Decision:
    """A no-demand decision placing `cells` (module -> replicas)."""
    total = sum(cells.values())
    want = total if wanted is None else wanted
    return Decision(
        deployment="ns/d",
        replicas=want,
        unplaced_replicas=want - total,
        assignments=tuple(Assignment(m, k, {}) for m, k in sorted(cells.items())),
        explanation={},
        cost=1.0,
        message=message,
    )


def use(
    name: str, usable: bool = True, placeable: bool = True, draining: bool = False
) -> ModuleUse:
    return ModuleUse(name, usable, placeable, draining, "" if usable else "NotReady for 90s")


def member(module: str, replicas: int, ready: int | None = None, **kw: Any) -> MemberState:
    return MemberState(
        module=module,
        known=kw.pop("known", True),
        exists=replicas > 0 or kw.pop("exists", False),
        replicas=replicas,
        ready=replicas if ready is None else ready,
        spec_hash="h",
        **kw,
    )


def cells(**by_module: int) -> dict[tuple[str, str], int]:
    return {("", m): k for m, k in by_module.items() if k}


def inputs(
    current: dict[tuple[str, str], int],
    target: Decision,
    members: list[MemberState],
    modules: list[ModuleUse] | None = None,
    wanted: int | None = None,
    **kw: Any,
) -> Inputs:
    names = (
        {m for _, m in current}
        | {a.module for a in target.assignments}
        | {m.module for m in members}
    )
    mods = {u.name: u for u in (modules or [])}
    for n in names:
        mods.setdefault(n, use(n))
    return Inputs(
        infd=kw.pop("deployment", infd(wanted if wanted is not None else target.replicas)),
        wanted={"": wanted if wanted is not None else target.replicas},
        current=current,
        modules=mods,
        members={m.module: m for m in members},
        decision=target,
        rendered_hash={n: "h" for n in names},
        **kw,
    )


def actions(p: planner.Plan) -> set[tuple[str, str, int]]:
    return {(a.kind, a.module, a.replicas) for a in p.actions}


def condition(p: planner.Plan, type_: str) -> tuple[str, str, str]:
    c = next(c for c in p.status.conditions if c.type == type_)
    return c.status.value, c.reason, c.message


# ------------------------------------------------------------------------------------- step
@pytest.mark.parametrize(
    ("case", "current", "target", "wanted", "involuntary", "budget", "allowed", "expect"),
    [
        (
            "drain: two moves per step, the rest waits",
            {("eu", "paris"): 28, ("eu", "reykjavik"): 1},
            {("eu", "oslo"): 28, ("eu", "reykjavik"): 1},
            {"eu": 29},
            {},
            2,
            True,
            {("eu", "paris"): 26, ("eu", "oslo"): 2, ("eu", "reykjavik"): 1},
        ),
        (
            "a step waits until the previous one is Ready",
            {("eu", "paris"): 28, ("eu", "reykjavik"): 1},
            {("eu", "oslo"): 28, ("eu", "reykjavik"): 1},
            {"eu": 29},
            {},
            2,
            False,
            {("eu", "paris"): 28, ("eu", "reykjavik"): 1},
        ),
        (
            "cordon + more demand: extra replicas go elsewhere, nothing moves",
            {("eu", "paris"): 24},
            {("eu", "paris"): 24, ("eu", "oslo"): 3},
            {"eu": 27},
            {},
            2,
            True,
            {("eu", "paris"): 24, ("eu", "oslo"): 3},
        ),
        (
            "less demand: the surplus goes at once",
            {("eu", "paris"): 10, ("eu", "oslo"): 2},
            {("eu", "paris"): 6},
            {"eu": 6},
            {},
            1,
            False,
            {("eu", "paris"): 6},
        ),
        (
            "unusable module: its replicas go at once and are replaced at once",
            {("eu", "reykjavik"): 5, ("eu", "paris"): 2},
            {("eu", "paris"): 7},
            {"eu": 7},
            {("eu", "reykjavik"): "module reykjavik is unusable"},
            1,
            False,
            {("eu", "paris"): 7},
        ),
        (
            "nowhere to go: the replica stays",
            {("", "dallas"): 3},
            {},
            {"": 3},
            {},
            2,
            True,
            {("", "dallas"): 3},
        ),
        (
            "demand shifts region: the old region's surplus goes, the new one is added",
            {("eu", "paris"): 4},
            {("ap", "singapore"): 4},
            {"ap": 4},
            {},
            1,
            False,
            {("ap", "singapore"): 4},
        ),
    ],
)
def test_step(
    case: str,
    current: dict[tuple[str, str], int],
    target: dict[tuple[str, str], int],
    wanted: dict[str, int],
    involuntary: dict[tuple[str, str], str],
    budget: int,
    allowed: bool,
    expect: dict[tuple[str, str], int],
) -> None:
    result = step(current, target, wanted, involuntary, budget=budget, moves_allowed=allowed)
    assert result.cells == expect, case
    assert sum(n for *_, n in result.moves) <= budget
    # never below what is wanted, unless the target itself cannot place them (or they go
    # involuntarily and have no replacement)
    for region, want in wanted.items():
        have = sum(k for (r, _), k in result.cells.items() if r == region)
        gone = sum(n for r, _, n, _ in result.removed if r == region and n)
        assert have >= min(want, sum(k for (r, _), k in current.items() if r == region) - gone)


def test_step_reports_why_replicas_stay() -> None:
    result = step(
        {("", "dallas"): 3, ("", "paris"): 2},
        {("", "oslo"): 1},
        {"": 5},
        {},
        budget=1,
        moves_allowed=True,
    )
    whys = {(m, why) for _, m, _, why in result.held}
    assert ("dallas", planner.HELD_NO_DESTINATION) in whys or (
        "paris",
        planner.HELD_NO_DESTINATION,
    ) in whys
    assert sum(n for *_, n in result.moves) == 1


# ------------------------------------------------------------------------------------- plan
def test_drain_keeps_the_old_replicas_until_the_new_ones_are_ready() -> None:
    current = cells(paris=4)
    target = decision({"oslo": 4})
    members = [member("paris", 4), member("oslo", 0, known=True)]
    p = plan(
        inputs(current, target, members, [use("paris", placeable=False, draining=True)]),
        NOW,
        Settings(budget=2),
    )
    assert p.step.cells == cells(paris=2, oslo=2)
    # oslo gets its 2 new replicas; paris keeps all 4 running until they are Ready
    assert actions(p) == {("apply", "oslo", 2)}
    held = {(h.module, h.replicas, h.reason) for h in p.status.held_replicas or []}
    assert held == {("paris", 2, "Handover"), ("paris", 2, "WaitingForBudget")}
    assert condition(p, "Ready")[0] == "True"
    assert condition(p, "Reconciling")[:2] == ("True", "Migrating")
    # the message says why in words, not the held reason's code
    assert (
        "2 replicas to move (waiting for the disruption budget)" in condition(p, "Reconciling")[2]
    )


def test_handover_completes_once_the_replacements_are_ready() -> None:
    current = cells(paris=2, oslo=2)
    target = decision({"oslo": 4})
    members = [member("paris", 4), member("oslo", 2, ready=2)]
    p = plan(
        inputs(current, target, members, [use("paris", placeable=False, draining=True)]),
        NOW,
        Settings(budget=2),
    )
    # the previous step is ready: the next two move, paris shrinks only to what it still holds
    assert p.step.cells == cells(oslo=4)
    assert ("apply", "oslo", 4) in actions(p) or ("scale", "oslo", 4) in actions(p)
    assert ("delete", "paris", 0) not in actions(p)


def test_replicas_that_serve_nothing_yet_move_at_once_and_serving_ones_wait() -> None:
    """Moving a replica that is not Ready disrupts nothing: no budget, no waiting for the
    previous step; Ready ones on the same module still go make-before-break."""
    current = cells(paris=4)
    target = decision({"oslo": 4})
    # paris: 4 replicas, 1 Ready (the others never started: someone took the GPUs)
    members = [member("paris", 4, ready=1), member("oslo", 0, known=True)]
    p = plan(
        inputs(current, target, members, [use("paris", placeable=False, draining=True)]),
        NOW,
        Settings(budget=1),
    )
    # the 3 idle ones move now, beyond the budget of 1 and although paris is not settled;
    # the Ready one waits for the step
    assert p.step.cells == cells(paris=1, oslo=3)
    assert ("apply", "oslo", 3) in actions(p)
    # paris keeps its Ready replica and drops the idle ones
    assert ("scale", "paris", 1) in actions(p)
    held = {(h.module, h.replicas, h.reason) for h in p.status.held_replicas or []}
    assert ("paris", 1, "WaitingForStep") in held
    # an unknown cluster's replicas are never taken for idle
    unknown = [member("paris", 4, ready=0, known=False), member("oslo", 0, known=True)]
    p = plan(
        inputs(current, target, unknown, [use("paris", placeable=False, draining=True)]),
        NOW,
        Settings(budget=1),
    )
    assert p.step.cells == cells(paris=4)


def test_old_module_removed_when_everything_new_is_ready() -> None:
    current = cells(oslo=4)
    target = decision({"oslo": 4})
    members = [member("paris", 2), member("oslo", 4, ready=4)]
    p = plan(inputs(current, target, members), NOW, Settings())
    assert ("delete", "paris", 0) in actions(p)


def test_forbidden_module_is_emptied_at_once_and_the_event_says_compliance_wins() -> None:
    current = cells(frankfurt=3)
    target = decision({"paris": 3})
    members = [member("frankfurt", 3), member("paris", 0)]
    p = plan(
        inputs(
            current,
            target,
            members,
            forbidden={("", "frankfurt"): "not certified ISO27001"},
        ),
        NOW,
        Settings(),
    )
    assert ("delete", "frankfurt", 0) in actions(p)
    assert ("apply", "paris", 3) in actions(p)
    assert any(e.reason == "ComplianceRemoval" and "compliance wins" in e.message for e in p.events)


def test_unreachable_cluster_is_never_acted_on() -> None:
    current = cells(reykjavik=2)
    target = decision({"paris": 2})
    members = [member("reykjavik", 2, known=False), member("paris", 0)]
    p = plan(
        inputs(current, target, members, [use("reykjavik", usable=False, placeable=False)]),
        NOW,
        Settings(),
    )
    assert all(a.module != "reykjavik" for a in p.actions)
    assert ("apply", "paris", 2) in actions(p)


def test_returning_cluster_keeps_serving_until_the_replacement_is_ready() -> None:
    # reykjavik was re-placed to paris during the outage; it is back (usable, known) and its
    # old replicas are ready again while paris' are still starting
    current = cells(paris=2)
    target = decision({"paris": 2})
    members = [member("reykjavik", 2, ready=2), member("paris", 2, ready=0)]
    p = plan(inputs(current, target, members), NOW, Settings())
    assert all(not (a.module == "reykjavik" and a.kind == "delete") for a in p.actions)
    members = [member("reykjavik", 2, ready=2), member("paris", 2, ready=2)]
    p = plan(inputs(current, target, members), NOW, Settings())
    assert ("delete", "reykjavik", 0) in actions(p)


@pytest.mark.parametrize("gone", [False, True])
def test_replicas_seen_ready_on_an_unusable_module_stay_until_their_replacements_are(
    gone: bool,
) -> None:
    # reykjavik's cluster answers again (its replicas Ready) before its heartbeat turned the
    # module Ready (soak: chat-small 10 -> 8 for 23 s); or its module object is gone
    def inp(current: dict[tuple[str, str], int], members: list[MemberState]) -> Inputs:
        i = inputs(current, target, members, [use("reykjavik", usable=False, placeable=False)])
        if gone:
            i = dataclasses.replace(
                i, modules={k: v for k, v in i.modules.items() if k != "reykjavik"}
            )
        return i

    target = decision({"paris": 2})
    members = [member("reykjavik", 2, ready=2), member("paris", 0)]
    p = plan(inp(cells(reykjavik=2), members), NOW, Settings())
    assert ("apply", "paris", 2) in actions(p)
    assert all(a.module != "reykjavik" for a in p.actions)
    held = {(h.module, h.replicas, h.reason) for h in p.status.held_replicas or []}
    assert held == {("reykjavik", 2, "Handover")}
    members = [member("reykjavik", 2, ready=2), member("paris", 2, ready=2)]
    p = plan(inp(cells(paris=2), members), NOW, Settings())
    assert ("delete", "reykjavik", 0) in actions(p)


def test_an_unusable_module_with_nothing_ready_is_emptied_at_once() -> None:
    current = cells(reykjavik=2)
    target = decision({"paris": 2})
    members = [member("reykjavik", 2, ready=0), member("paris", 0)]
    p = plan(
        inputs(current, target, members, [use("reykjavik", usable=False, placeable=False)]),
        NOW,
        Settings(),
    )
    assert ("delete", "reykjavik", 0) in actions(p)


def test_pending_replicas_past_the_timeout_are_reported_and_replaced() -> None:
    current = cells(frankfurt=8)
    target = decision({"frankfurt": 4, "paris": 4})
    since = NOW - timedelta(seconds=300)
    members = [
        member(
            "frankfurt",
            8,
            ready=4,
            waiting_since=(since,) * 4,
            unschedulable="0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
        ),
        member("paris", 0),
    ]
    p = plan(inputs(current, target, members), NOW, Settings(pending_timeout=120))
    status, reason, message = condition(p, "Degraded")
    assert (status, reason) == ("True", "PodsPending")
    assert "Insufficient nvidia.com/gpu" in message
    assert set(p.block) == {"frankfurt"} and p.block["frankfurt"].since == NOW
    assert "Insufficient nvidia.com/gpu" in p.block["frankfurt"].reason
    assert ("apply", "paris", 4) in actions(p)
    assert p.step.cells == cells(frankfurt=4, paris=4)


def test_member_rejection_is_reported_as_what_it_is() -> None:
    current = cells(paris=2)
    target = decision({"paris": 2})
    err = planner.ApplyError(
        "MemberRejected",
        'apply Deployment ns/d-paris: HTTP 422: Deployment.apps "d-paris" is invalid: '
        'spec.template.spec.containers[0].env[0].name: Invalid value: "A=B"',
        True,
        3,
        NOW,
    )
    p = plan(
        inputs(current, target, [member("paris", 0)], apply_errors={"paris": err}), NOW, Settings()
    )
    assert condition(p, "Degraded")[1] == "MemberRejected"
    assert "Invalid value" in condition(p, "Degraded")[2]
    assert condition(p, "Stalled")[:2] == ("True", "MemberRejected")
    # not retried for the same generation (permanent)
    assert all(a.kind != "apply" for a in p.actions)


def test_zero_wanted_and_zero_placed_is_ready() -> None:
    p = plan(inputs({}, decision({}), [], wanted=0), NOW, Settings())
    assert condition(p, "Ready")[0] == "True"
    assert condition(p, "Placed")[:2] == ("True", "NoReplicasWanted")


def test_missing_policy_pauses_placement_without_removing_anything() -> None:
    current = cells(paris=2)
    p = plan(
        inputs(current, decision({}, wanted=2), [member("paris", 2)], missing_policies=("gone",)),
        NOW,
        Settings(),
    )
    assert p.step.cells == current
    assert not any(a.kind == "delete" for a in p.actions)
    assert condition(p, "Placed")[:2] == ("False", "PolicyNotFound")
    assert condition(p, "Ready")[0] == "True"


def test_nothing_to_do_is_settled_and_quiet() -> None:
    current = cells(paris=2)
    p = plan(inputs(current, decision({"paris": 2}), [member("paris", 2)]), NOW, Settings())
    assert p.actions == () and p.settled
    assert condition(p, "Reconciling")[0] == "False"
    assert condition(p, "Stalled")[0] == "False"
    assert p.events == ()


def test_scale_up_while_the_module_is_within_toleration_goes_to_usable_modules() -> None:
    # the engine already keeps existing replicas on a NotReady-within-toleration module and
    # places new ones on usable modules; the planner adds them at once and removes nothing
    current = cells(reykjavik=2)
    target = decision({"reykjavik": 2, "paris": 4})
    members = [member("reykjavik", 2, known=False), member("paris", 0)]
    p = plan(
        inputs(current, target, members, [use("reykjavik", usable=True, placeable=False)]),
        NOW,
        Settings(),
    )
    assert p.step.cells == cells(reykjavik=2, paris=4)
    assert ("apply", "paris", 4) in actions(p)
    assert not any(a.module == "reykjavik" for a in p.actions)


def test_member_action_kinds() -> None:
    assert MemberAction("scale", "m", 2).kind == "scale"


def test_a_module_that_keeps_refusing_pods_is_avoided_for_longer_each_time() -> None:
    since = NOW - timedelta(seconds=300)
    stuck_member = member("frankfurt", 2, ready=0, waiting_since=(since, since))
    inp = inputs(cells(frankfurt=2), decision({"frankfurt": 2}), [stuck_member])
    first = planner.pending_blocks(inp, {"frankfurt": 2}, NOW, 30)["frankfurt"]
    assert first.strikes == 1 and first.until is not None
    assert planner.blocked_now({"frankfurt": first}, NOW)
    later = first.until + timedelta(seconds=1)
    again = dataclasses.replace(inp, pending_blocks={"frankfurt": first})
    assert not planner.blocked_now({"frankfurt": first}, later)
    second = planner.pending_blocks(again, {"frankfurt": 2}, later, 30)["frankfurt"]
    assert second.strikes == 2
    assert second.until is not None
    assert (second.until - later) > (first.until - NOW)


def test_the_fleet_plan_moves_replicas_but_never_adds_what_the_engine_cannot_place() -> None:
    """The rebalancer's plan was made when the fleet had more room: it says 6 where the engine
    now places 5 (a higher priority took a replica's GPUs). Only where, never how many."""
    current = cells(paris=5)
    now_decision = decision({"paris": 5}, wanted=6)
    stale = decision({"paris": 6})
    members = [member("paris", 5)]
    p = plan(
        inputs(current, now_decision, members, wanted=6, rebalance_target=stale),
        NOW,
        Settings(),
    )
    assert p.step.cells == cells(paris=5)
    assert not p.rebalanced
    # a plan that moves the same count is followed (one step, budgeted)
    moved = decision({"oslo": 5})
    p = plan(
        inputs(current, decision({"paris": 5}), members, wanted=5, rebalance_target=moved),
        NOW,
        Settings(budget=2),
    )
    assert p.step.cells == cells(paris=3, oslo=2)
    assert p.rebalanced
