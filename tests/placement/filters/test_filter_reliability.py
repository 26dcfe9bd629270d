"""MinReliability: spec.minReliability against status.reliability.readyFraction."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import Code, place_one
from aifactory.placement.filters import reliability


@pytest.mark.parametrize(
    ("fraction", "minimum", "code", "reason"),
    [
        (1.0, None, Code.SUCCESS, None),
        (0.5, None, Code.SUCCESS, None),  # no minimum: nothing to check
        (0.999, 0.99, Code.SUCCESS, None),
        (0.99, 0.99, Code.SUCCESS, None),  # at the bar passes
        (
            0.95,
            0.99,
            Code.UNSCHEDULABLE,  # outages age out of the window: may fit later
            reliability.REASON_RELIABILITY.format(min=0.99),
        ),
        (0.0, 0.01, Code.UNSCHEDULABLE, reliability.REASON_RELIABILITY.format(min=0.01)),
    ],
)
def test_min_reliability(fraction: float, minimum: float | None, code: Code, reason: str) -> None:
    fleet, ws = state([module(ready_fraction=fraction)], workload(min_reliability=minimum))
    status = reliability.filter(fleet, ws).status(0)
    assert status.code == code
    assert status.reasons == ((reason,) if reason else ())
    assert status.plugin == reliability.NAME


def test_a_flaky_module_gets_no_replicas_and_running_ones_must_leave() -> None:
    steady = module("steady", carbon_intensity=300.0, ready_fraction=1.0)
    flaky = module("flaky", carbon_intensity=10.0, ready_fraction=0.9)  # cheaper, but flaky
    wl = workload(replicas=2, min_reliability=0.99)
    decision = place_one(wl, [steady, flaky])
    assert {a.module: a.replicas for a in decision.assignments} == {"steady": 2}
    assert "reliability below 0.99" in decision.explanation["flaky"]
    _, ws = state([steady, flaky], wl)
    # not a capacity or readiness rule: a running placement there breaks it (moves, voluntary)
    assert not ws.static_ok[:, 0].any()  # "flaky" sorts first
