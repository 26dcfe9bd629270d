"""Record bodies: the reason of a placement change, before/after cells, costs, inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aifactory.api import PlacementRecord
from aifactory.audit.chain import record_name, seal
from aifactory.audit.records import (
    COMPLIANCE_REMOVAL,
    DRAINED,
    FAILOVER,
    MODULE_REMOVED,
    PLACED,
    PREEMPTED,
    REBALANCED,
    RESCHEDULED,
    SCALED,
    SLO_BREACH,
    Change,
    CostTerms,
    ModuleFacts,
    build,
    classify,
    complete,
)

NOW = datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
A = {("", "reykjavik"): 4}
B = {("", "oslo"): 4}
UNUSABLE = "module reykjavik is unusable: NotReady (HeartbeatTimeout) for 12s"


@pytest.mark.parametrize(
    ("before", "after", "change", "reason", "failed"),
    [
        ({}, A, Change(), PLACED, ()),
        (A, {("", "reykjavik"): 6}, Change(), SCALED, ()),
        (A, B, Change(removed=(("", "reykjavik", 4, UNUSABLE),)), FAILOVER, ("reykjavik",)),
        (
            A,
            B,
            Change(removed=(("", "reykjavik", 4, "module reykjavik is gone"),)),
            MODULE_REMOVED,
            (),
        ),
        (
            A,
            B,
            Change(removed=(("", "reykjavik", 4, "an Enforce policy forbids reykjavik: x"),)),
            COMPLIANCE_REMOVAL,
            (),
        ),
        (
            A,
            {},
            Change(removed=(("", "reykjavik", 4, "preempted by ns/b (priority 10)"),)),
            PREEMPTED,
            (),
        ),
        (A, B, Change(moves=(("", "reykjavik", "oslo", 2),), rebalanced=True), REBALANCED, ()),
        (A, B, Change(moves=(("", "reykjavik", "oslo", 2),)), RESCHEDULED, ()),
        (
            A,
            B,
            Change(
                moves=(("", "reykjavik", "oslo", 2),),
                rebalanced=True,
                draining=frozenset({"reykjavik"}),
            ),
            DRAINED,
            (),
        ),
        (
            {("eu-west", "paris"): 2},
            {("eu-west", "oslo"): 2},
            Change(
                moves=(("eu-west", "paris", "oslo", 2),),
                slo_excluded=frozenset({("eu-west", "paris")}),
            ),
            SLO_BREACH,
            (),
        ),
        (A, {("", "reykjavik"): 2, ("", "oslo"): 2}, Change(), RESCHEDULED, ()),
    ],
)
def test_the_reason_names_what_caused_the_change(
    before: dict[tuple[str, str], int],
    after: dict[tuple[str, str], int],
    change: Change,
    reason: str,
    failed: tuple[str, ...],
) -> None:
    assert classify(before, after, change) == (reason, failed)


def test_a_body_is_a_valid_record_with_everything_the_issue_asks_for() -> None:
    draft = build(
        namespace="ns",
        name="app",
        uid="u-1",
        generation=3,
        data_classification="restricted",
        before=A,
        after=B,
        change=Change(removed=(("", "reykjavik", 4, UNUSABLE),)),
        now=NOW,
        cost_after=CostTerms(latency=0.0, carbon=0.27, reliability=0.0),
        cost_before=CostTerms(latency=0.0, carbon=0.246),
        unplaced=0,
        modules=[ModuleFacts("oslo", "NO", True, 30.0, 1.0, 1.0), ModuleFacts("reykjavik")],
        modules_digest="a" * 64,
        policies=[("eu-restricted-data", "1255", "Enforce")],
        demand={"eu-west": 100.0},
        fleet_plan={"cost": 10.5, "lowerBound": 10.4, "gap": 0.0096, "solver": "lp+round"},
    )
    assert draft.reason == FAILOVER and draft.failover_modules == ("reykjavik",)
    body = draft.body
    assert body["time"] == "2026-05-01T10:00:00.123Z"
    assert body["before"] == [{"module": "reykjavik", "region": "", "replicas": 4}]
    assert body["after"] == [{"module": "oslo", "region": "", "replicas": 4}]
    assert body["message"] == "reykjavik=4 -> oslo=4"
    assert body["cost"]["total"] == 0.27 and body["cost"]["previousTotal"] == 0.246
    body = complete(body)  # the keeper adds the digests of policies and demand
    assert set(body["inputs"]) == {"modules", "policies", "demand"}
    assert draft.labels["aifactory.dev/reason"] == FAILOVER
    spec = seal(body, 7, "b" * 64)
    PlacementRecord.from_manifest({"metadata": {"name": record_name(7)}, "spec": spec})
    # the same demand and policies give the same digests, different ones differ
    other = build(
        namespace="ns",
        name="app",
        uid=None,
        generation=None,
        data_classification=None,
        before={},
        after=A,
        change=Change(),
        now=NOW,
        demand={"eu-west": 101.0},
        policies=[("eu-restricted-data", "1255", "Enforce")],
    )
    assert complete(other.body)["inputs"]["policies"] == body["inputs"]["policies"]
    assert complete(other.body)["inputs"]["demand"] != body["inputs"]["demand"]


def test_long_names_are_not_labels() -> None:
    draft = build(
        namespace="ns",
        name="x" * 100,
        uid=None,
        generation=None,
        data_classification=None,
        before={},
        after=A,
        change=Change(),
        now=NOW,
    )
    assert "aifactory.dev/inference-deployment" not in draft.labels
    assert draft.labels["aifactory.dev/namespace"] == "ns"
