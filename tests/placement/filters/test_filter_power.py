"""PowerBudget: GPUs * powerW * pue of everything placed stays within powerBudgetKW * 1000."""

from __future__ import annotations

import pytest
from tests.placement.factories import module, pool, state, workload

from aifactory.placement import Code
from aifactory.placement.filters import power


@pytest.mark.parametrize(
    ("budget_kw", "pue", "allocated", "per_replica", "capacity"),
    [
        (10.0, 1.0, 0, 1, 8),  # 8 x 700 W = 5.6 kW: GPUs bind first
        (2.8, 1.0, 0, 1, 4),  # 4 x 700 W
        (2.8, 1.4, 0, 1, 2),  # 700 * 1.4 = 980 W per GPU: 2 fit in 2.8 kW
        (2.8, 1.0, 2, 1, 2),  # others hold 2 GPUs = 1.4 kW
        (2.8, 1.0, 0, 2, 2),
        (0.6, 1.0, 0, 1, 0),
    ],
)
def test_power_bounds_capacity(
    budget_kw: float, pue: float, allocated: int, per_replica: int, capacity: int
) -> None:
    m = module(
        pools=[pool("H100", 8, power=700, allocated=allocated)], budget_kw=budget_kw, pue=pue
    )
    fleet, ws = state([m], workload(gpus_per_replica=per_replica))
    assert int(ws.capacity[0]) == capacity
    status = power.filter(fleet, ws).status(0)
    if capacity:
        assert status.ok
    else:
        assert status.code == Code.UNSCHEDULABLE
        assert status.reasons == (power.REASON_POWER,)


def test_low_power_pool_is_filled_first() -> None:
    # 1 kW: one H100 (700 W) or thirteen L4 (72 W); the engine packs the L4s first.
    m = module(pools=[pool("H100", 8, power=700), pool("L4", 16, 24, 72)], budget_kw=1.0)
    _fleet, ws = state([m], workload())
    assert int(ws.capacity[0]) == 13
