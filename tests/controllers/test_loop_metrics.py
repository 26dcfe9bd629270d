"""The placement loop's latency metric: each deployment's own decision counts, not the cycle's
last one (pure: the loop's bookkeeping with a stand-in runtime, no cluster)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aifactory import metrics
from aifactory.api import InferenceDeploymentStatus
from aifactory.api.common import Condition, ConditionStatus
from aifactory.controllers.cycle import CycleResult
from aifactory.controllers.loop import Loops


def _status(generation: int, placed: bool) -> InferenceDeploymentStatus:
    return InferenceDeploymentStatus(
        observed_generation=generation,
        conditions=[
            Condition(
                type="Placed",
                status=ConditionStatus.TRUE if placed else ConditionStatus.FALSE,
                reason="Placed" if placed else "Unschedulable",
                message="",
                observed_generation=generation,
            )
        ],
    )


def _runtime() -> Any:
    rt = SimpleNamespace(
        decided={},
        decided_uid={},
        blocked={},
        adopted={},
        blind_at={},
        spec_seen={},
        accountability=None,
        schedule=lambda *a: None,
        forget=lambda ref: None,
    )
    return rt


def _observed() -> float:
    return sum(
        s.value
        for m in metrics.PLACEMENT_LATENCY.collect()
        for s in m.samples
        if s.name.endswith("_count")
    )


def test_latency_is_observed_for_every_placed_deployment_of_a_cycle() -> None:
    rt = _runtime()
    t0 = time.monotonic() - 2.0
    rt.spec_seen = {"a/placed": (3, t0), "b/unplaced": (1, t0), "c/stale": (5, t0)}
    result = CycleResult(
        # the placed one first, then one the engine could not place: each is judged by its own
        # status, whatever order the cycle decided them in
        decided={
            "a/placed": _status(3, True),
            "c/stale": _status(4, True),  # decided for an older generation than the one seen
            "b/unplaced": _status(1, False),
        },
        placed=["a/placed", "c/stale", "b/unplaced"],
    )
    before = _observed()
    Loops._apply(SimpleNamespace(rt=rt), result)  # type: ignore[arg-type]
    assert _observed() - before == 1
    assert set(rt.spec_seen) == {"b/unplaced", "c/stale"}
