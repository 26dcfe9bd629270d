"""The API's bounds keep every derived number small: replica counts, power and cost.

A value the schema admits is one the operator will compute with; these tests take the largest
and smallest values the models accept and check what the engine derives from them.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from aifactory.api import AIFactoryModule, InferenceDeploymentSpec
from aifactory.api import limits as L
from aifactory.api.common import MAX_LIST_ITEMS
from aifactory.api.module import MAX_GPU_POOLS
from aifactory.placement.geo import rtt_ms
from aifactory.placement.model import PlacementSettings

INT64_MAX = 2**63 - 1


def _worst_deployment(**replicas: int) -> InferenceDeploymentSpec:
    regions = [
        {
            "name": f"r{i}",
            "country": "IE",
            "latitude": 53.0,
            "longitude": -6.0,
            "requestsPerSecond": L.MAX_REQUESTS_PER_SECOND,
        }
        for i in range(MAX_LIST_ITEMS)
    ]
    return InferenceDeploymentSpec.model_validate(
        {
            "model": {"name": "m", "image": "i"},
            "replicas": replicas,
            "throughputPerReplica": L.MIN_THROUGHPUT_PER_REPLICA,
            "demand": {"headroom": L.MAX_HEADROOM, "regions": regions},
        }
    )


def test_replica_counts_at_the_limits_stay_exact_and_within_int64() -> None:
    spec = _worst_deployment()
    per_region = spec.replicas_per_region()
    assert set(per_region.values()) == {1_100_000_000}  # 1e6 * 11 / 0.01
    total = sum(per_region.values())
    assert total < 2**53 < INT64_MAX  # exact as a float too
    # Unset max: the total is the API's replica limit, not seventy billion.
    assert spec.replicas_needed() == L.MAX_REPLICAS
    assert _worst_deployment(min=1, max=50).replicas_needed() == 50


def test_cost_of_one_replica_at_the_limits_is_finite_and_small() -> None:
    # Longest route on Earth (antipodes), tightest latency budget, heaviest weights.
    rtt = rtt_ms(0.0, 0.0, 0.0, 180.0, PlacementSettings())
    assert 300 < rtt < 330
    latency = L.MAX_WEIGHT * rtt / L.MIN_LATENCY_MS
    carbon = L.MAX_WEIGHT * L.MAX_CARBON_INTENSITY * L.MAX_PUE / 500
    per_replica = latency + carbon
    assert math.isfinite(per_replica) and per_replica < 1e7
    assert per_replica * L.MAX_REPLICAS * 10_000 < 1e15  # ten thousand such deployments


def test_module_power_at_the_limits_is_finite() -> None:
    watts = MAX_GPU_POOLS * L.MAX_GPUS_PER_POOL * L.MAX_GPU_POWER_W * L.MAX_PUE
    assert watts < 1e12 and L.MAX_POWER_BUDGET_KW * 1000 < 1e12


def _module(**energy: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": "m"},
        "spec": {
            "location": {"country": "IS", "latitude": 64.1, "longitude": -21.9},
            "energy": {
                "sources": [{"type": "hydro", "share": 1}],
                "carbonIntensity": 28,
                "powerBudgetKW": 70,
                **energy,
            },
            "capacity": {"gpus": [{"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700}]},
            "cluster": {"nodeSelector": {"aifactory.dev/module": "m"}},
        },
    }


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        AIFactoryModule.from_manifest(_module(carbonIntensity=value))


def test_the_largest_accepted_values_parse() -> None:
    module = AIFactoryModule.from_manifest(
        _module(
            carbonIntensity=L.MAX_CARBON_INTENSITY,
            powerBudgetKW=L.MAX_POWER_BUDGET_KW,
            pue=L.MAX_PUE,
        )
    )
    assert module.spec.energy.pue == L.MAX_PUE
