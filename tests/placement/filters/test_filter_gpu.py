"""GpuModel: an accepted model, enough memory per GPU and a pool big enough for one replica."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, pool, state, workload

from aifactory.placement import Code, GpuPool
from aifactory.placement.filters import gpu

H100 = pool("H100", 8, 80)
L4 = pool("L4", 8, 24, 72)


@pytest.mark.parametrize(
    ("pools", "kw", "reason"),
    [
        ([H100], {}, None),
        ([H100], {"gpu_models": frozenset({"H100", "L40S"})}, None),
        (
            [L4],
            {"gpu_models": frozenset({"H100", "L40S"})},
            gpu.REASON_MODEL.format(models="H100,L40S"),
        ),
        ([L4], {"min_gpu_memory_gib": 40}, gpu.REASON_MEMORY.format(gib=40)),
        ([L4, H100], {"min_gpu_memory_gib": 40}, None),
        # The H100 pool has the memory but not the model; the L4 pool the model only.
        (
            [L4, H100],
            {"gpu_models": frozenset({"L4"}), "min_gpu_memory_gib": 40},
            gpu.REASON_MEMORY.format(gib=40),
        ),
        ([pool("H100", 4)], {"gpus_per_replica": 8}, gpu.REASON_POOL_SIZE.format(gpus=8)),
        ([], {}, gpu.REASON_MODEL.format(models="any")),
    ],
)
def test_gpu_model(pools: list[GpuPool], kw: dict[str, object], reason: str | None) -> None:
    fleet, ws = state([module(pools=pools)], workload(**kw))  # type: ignore[arg-type]
    status = gpu.filter(fleet, ws).status(0)
    if reason is None:
        assert status.ok
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (reason,)


def test_eligible_pools_are_per_pool() -> None:
    fleet, ws = state([module(pools=[L4, H100])], workload(min_gpu_memory_gib=40))
    models = {
        fleet.modules[0].pools[int(fleet.pool_orig[p])].model: bool(ws.eligible_pool[p])
        for p in range(fleet.n_pools)
    }
    assert models == {"L4": False, "H100": True}
