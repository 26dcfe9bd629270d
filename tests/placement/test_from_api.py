"""Adapters from the aifactory.dev models to the engine's views."""

from __future__ import annotations

from typing import Any

import pytest

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.placement import Selector, place_fleet
from aifactory.placement.from_api import engine_inputs, module_view, policy_view, workload_view


def afm(name: str = "oslo", status: dict[str, Any] | None = None, **spec: Any) -> AIFactoryModule:
    body: dict[str, Any] = {
        "location": {
            "country": "NO",
            "latitude": 59.91,
            "longitude": 10.75,
            "jurisdictions": ["FIVE_EYES"],
        },
        "energy": {
            "sources": [{"type": "hydro", "share": 0.9}, {"type": "wind", "share": 0.1}],
            "carbonIntensity": 30,
            "powerBudgetKW": 50,
            "pue": 1.15,
        },
        "capacity": {
            "gpus": [
                {"model": "H100", "count": 32, "memoryGiB": 80, "powerW": 700},
                {"model": "L40S", "count": 48, "memoryGiB": 48, "powerW": 350},
            ]
        },
        "security": {"certifications": ["ISO27001"], "operatorCountry": "NO"},
        "cluster": {"nodeSelector": {"aifactory.dev/module": name}},
        **spec,
    }
    manifest: dict[str, Any] = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": name, "labels": {"tier": "green"}},
        "spec": body,
    }
    if status is not None:
        manifest["status"] = status
    return AIFactoryModule.from_manifest(manifest)


def infd(status: dict[str, Any] | None = None, **spec: Any) -> InferenceDeployment:
    body: dict[str, Any] = {
        "model": {"name": "m", "image": "img"},
        "resources": {"gpusPerReplica": 2, "gpuModels": ["H100"], "minGpuMemoryGiB": 40},
        "replicas": {"min": 2, "max": 20},
        "throughputPerReplica": 40,
        "demand": {
            "headroom": 0.2,
            "regions": [
                {
                    "name": "eu-west",
                    "country": "IE",
                    "latitude": 53.35,
                    "longitude": -6.26,
                    "requestsPerSecond": 300,
                },
                {
                    "name": "eu-north",
                    "country": "SE",
                    "latitude": 59.33,
                    "longitude": 18.07,
                    "requestsPerSecond": 50,
                },
            ],
        },
        "slo": {"maxLatencyMs": 40, "minModules": 2},
        "dataClassification": "restricted",
        **spec,
    }
    manifest: dict[str, Any] = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "chat", "namespace": "eu", "labels": {"a": "b"}},
        "spec": body,
    }
    if status is not None:
        manifest["status"] = status
    return InferenceDeployment.from_manifest(manifest)


def test_module_without_status_is_ready_with_declared_capacity() -> None:
    m = module_view(afm())
    assert m.ready and m.schedulable
    assert [(p.model, p.count, p.allocated, p.memory_gib, p.power_w) for p in m.pools] == [
        ("H100", 32, 0, 80.0, 700.0),
        ("L40S", 48, 0, 48.0, 350.0),
    ]
    assert m.carbon_intensity == 30 and m.renewable_share == pytest.approx(1.0)
    assert m.sources == frozenset({"hydro", "wind"})
    assert {"NO", "EEA", "FIVE_EYES"} <= m.jurisdictions
    assert m.certifications == frozenset({"ISO27001"}) and m.operator_country == "NO"
    assert m.power_budget_kw == 50 and m.pue == 1.15 and m.labels == {"tier": "green"}


def test_status_overrides_capacity_energy_and_readiness() -> None:
    status = {
        "conditions": [{"type": "Ready", "status": "False", "reason": "HeartbeatLost"}],
        "capacity": {"gpus": [{"model": "H100", "gpusAllocatable": 30, "gpusAllocated": 10}]},
        "energy": {"carbonIntensity": 90, "renewableShare": 0.4},
    }
    m = module_view(afm(status=status), held={"H100": 4})
    assert not m.ready
    h100, l40s = m.pools
    assert (h100.count, h100.allocated) == (30, 6)  # 10 allocated, 4 of them ours
    assert (l40s.count, l40s.allocated) == (48, 0)  # not discovered: declared
    assert m.carbon_intensity == 90 and m.renewable_share == 0.4


@pytest.mark.parametrize(("assume", "ready"), [(True, True), (False, False)])
def test_status_without_ready_condition(assume: bool, ready: bool) -> None:
    m = module_view(afm(status={"energy": {"carbonIntensity": 40}}), assume_ready=assume)
    assert m.ready is ready


def test_workload_view_splits_replicas_per_region() -> None:
    wl = workload_view(infd(), {"residency": "eu"})
    # ceil(300 * 1.2 / 40) = 9 and ceil(50 * 1.2 / 40) = 2
    assert wl.key == "eu/chat" and wl.replicas == 11
    assert [(r.name, r.replicas, r.country) for r in wl.regions] == [
        ("eu-west", 9, "IE"),
        ("eu-north", 2, "SE"),
    ]
    assert wl.gpus_per_replica == 2 and wl.gpu_models == frozenset({"H100"})
    assert wl.max_latency_ms == 40 and wl.min_modules == 2
    assert wl.namespace_labels == {"residency": "eu"} and wl.labels == {"a": "b"}
    assert wl.data_classification == "restricted"


def test_workload_view_clamps_and_keeps_proportions() -> None:
    wl = workload_view(infd(replicas={"min": 1, "max": 5}))
    assert wl.replicas == 5
    assert [r.replicas for r in wl.regions] == [4, 1]
    fixed = workload_view(infd(replicas={"fixed": 3}, demand={}, throughputPerReplica=None))
    assert fixed.replicas == 3 and fixed.regions == ()


def test_current_placement_comes_from_status() -> None:
    status = {
        "placements": [
            {"module": "oslo", "replicas": 9, "regions": {"eu-west": 9}},
            {"module": "gone", "replicas": 0},
        ]
    }
    wl = workload_view(infd(status=status))
    assert [(c.module, c.replicas, dict(c.regions)) for c in wl.current] == [
        ("oslo", 9, {"eu-west": 9})
    ]


def test_policy_view() -> None:
    p = policy_view(
        SovereigntyPolicy.from_manifest(
            {
                "apiVersion": "aifactory.dev/v1alpha1",
                "kind": "SovereigntyPolicy",
                "metadata": {"name": "eu"},
                "spec": {
                    "namespaceSelector": {"matchLabels": {"residency": "eu"}},
                    "dataClassifications": ["restricted"],
                    "allowedJurisdictions": ["EU", "EEA"],
                    "requiredCertifications": ["ISO27001"],
                    "deniedOperatorCountries": ["FIVE_EYES"],
                    "dataResidency": "SameJurisdictionAsDemand",
                    "enforcement": "Audit",
                },
            }
        )
    )
    assert p.name == "eu" and p.enforcement == "Audit"
    assert p.namespace_selector == Selector.of({"residency": "eu"})
    assert p.deployment_selector is None
    assert p.allowed_jurisdictions == ("EU", "EEA")
    assert p.denied_operator_countries == ("FIVE_EYES",)
    assert p.data_residency == "SameJurisdictionAsDemand"


def test_engine_inputs_do_not_count_our_own_gpus_twice() -> None:
    status = {"capacity": {"gpus": [{"model": "H100", "gpusAllocatable": 32, "gpusAllocated": 32}]}}
    running = {
        "placements": [{"module": "oslo", "replicas": 11, "regions": {"eu-west": 9, "eu-north": 2}}]
    }
    inputs = engine_inputs([afm(status=status)], [infd(status=running)])
    assert inputs.modules[0].pools[0].allocated == 10  # 32 - 11 replicas x 2 GPUs
    result = place_fleet(inputs.workloads, inputs.modules, inputs.policies)
    d = result.placements[0]
    assert d.kept_current and d.unplaced_replicas == 0
