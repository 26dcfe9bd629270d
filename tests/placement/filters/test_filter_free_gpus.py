"""FreeGpus: one replica's worth of free GPUs in an accepted pool (could fit later)."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, pool, state, workload

from aifactory.placement import Code
from aifactory.placement.filters import free_gpus


@pytest.mark.parametrize(
    ("count", "allocated", "per_replica", "models", "ok"),
    [
        (8, 0, 1, frozenset(), True),
        (8, 8, 1, frozenset(), False),
        (8, 7, 2, frozenset({"H100"}), False),
        (8, 6, 2, frozenset({"H100"}), True),
    ],
)
def test_free_gpus(
    count: int, allocated: int, per_replica: int, models: frozenset[str], ok: bool
) -> None:
    fleet, ws = state(
        [module(pools=[pool("H100", count, allocated=allocated)])],
        workload(gpus_per_replica=per_replica, gpu_models=models),
    )
    status = free_gpus.filter(fleet, ws).status(0)
    if ok:
        assert status.ok
    else:
        assert status.code == Code.UNSCHEDULABLE
        label = free_gpus.models_label(models)
        assert status.reasons == (free_gpus.REASON_INSUFFICIENT.format(models=label),)
        assert label == ("H100" if models else "GPUs")


def test_capacity_counts_only_accepted_pools() -> None:
    m = module(pools=[pool("L4", 8, 24, 72), pool("H100", 4)])
    _fleet, ws = state([m], workload(gpu_models=frozenset({"H100"})))
    assert int(ws.gpu_capacity[0]) == 4
