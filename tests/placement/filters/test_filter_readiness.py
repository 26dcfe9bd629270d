"""ModuleReadiness: NotReady and cordoned modules take nothing new (could fit later)."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import Code
from aifactory.placement.filters import readiness


@pytest.mark.parametrize(
    ("ready", "schedulable", "code", "reason"),
    [
        (True, True, Code.SUCCESS, None),
        (False, True, Code.UNSCHEDULABLE, readiness.REASON_NOT_READY),
        (True, False, Code.UNSCHEDULABLE, readiness.REASON_CORDONED),
        (False, False, Code.UNSCHEDULABLE, readiness.REASON_NOT_READY),
    ],
)
def test_readiness(ready: bool, schedulable: bool, code: Code, reason: str | None) -> None:
    fleet, ws = state([module(ready=ready, schedulable=schedulable)], workload())
    status = readiness.filter(fleet, ws).status(0)
    assert status.code == code
    assert status.plugin == readiness.NAME
    assert status.reasons == ((reason,) if reason else ())
