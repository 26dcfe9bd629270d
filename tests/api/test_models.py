"""The API models: samples parse, bad input is refused naming the field, helpers compute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from tests.api.api_invalid_manifests import INVALID, Invalid, k8s_path, load_samples

from aifactory.api import (
    API_GROUP,
    API_VERSION,
    RESOURCES,
    AIFactoryModule,
    AIFactoryModuleStatus,
    Condition,
    ConditionStatus,
    DataClassification,
    EnergySourceType,
    Enforcement,
    InferenceDeployment,
    InferenceDeploymentSpec,
    InferenceDeploymentStatus,
    LabelSelector,
    ModulePlacement,
    SovereigntyPolicy,
    SovereigntyPolicyStatus,
    set_condition,
)
from aifactory.api.module import EnergyStatus, GpuPoolStatus, ModuleCapacityStatus

KINDS = {cls.KIND: cls for cls in RESOURCES}
SAMPLE_DOCS = [
    doc
    for name in ("modules.yaml", "policies.yaml", "deployments.yaml", "cascade.yaml")
    for doc in load_samples(name)
    if doc["kind"] in KINDS
]


def parse(doc: dict[str, Any]) -> Any:
    return KINDS[doc["kind"]].from_manifest(doc)


def sample(kind: type[Any], name: str) -> Any:
    return next(
        parse(d) for d in SAMPLE_DOCS if d["kind"] == kind.KIND and d["metadata"]["name"] == name
    )


def test_constants() -> None:
    assert (API_GROUP, API_VERSION) == ("aifactory.dev", "v1alpha1")


@pytest.mark.parametrize("doc", SAMPLE_DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_samples_parse_and_round_trip(doc: dict[str, Any]) -> None:
    obj = parse(doc)
    manifest = obj.to_manifest()
    assert manifest["apiVersion"] == "aifactory.dev/v1alpha1"
    assert manifest["kind"] == doc["kind"]
    assert type(obj).from_manifest(manifest) == obj
    # Every field the sample sets survives with its camelCase name.
    assert _subset(doc["spec"], manifest["spec"])


def _subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _subset(v, big[k]) for k, v in small.items()
        )
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(map(_subset, small, big))
    return bool(small == big)


def test_sample_fleet_matches_the_brief() -> None:
    modules = {
        d["metadata"]["name"]: parse(d) for d in SAMPLE_DOCS if d["kind"] == "AIFactoryModule"
    }
    expected = {
        "reykjavik": ("IS", 28),
        "oslo": ("NO", 30),
        "paris": ("FR", 56),
        "frankfurt": ("DE", 380),
        "dallas": ("US", 400),
        "singapore": ("SG", 470),
        "warsaw": ("PL", 700),
    }
    for name, (country, carbon) in expected.items():
        module = modules[name]
        assert module.spec.location.country == country
        assert module.spec.energy.carbon_intensity == carbon
        # The budget covers every declared GPU at full power, PUE included.
        assert module.max_power_kw() <= module.spec.energy.power_budget_kw


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_manifest_is_rejected_naming_the_field(case: Invalid) -> None:
    with pytest.raises(ValidationError) as info:
        KINDS[case.kind].from_manifest(case.manifest())
    errors = [(k8s_path(tuple(e["loc"])), e["msg"]) for e in info.value.errors()]
    assert any(
        (case.field.startswith(loc) or loc.startswith(case.field)) and case.offline_text in msg
        for loc, msg in errors
    ), f"expected an error at {case.field} containing {case.offline_text!r}, got {errors}"


def test_error_text_names_the_field() -> None:
    doc = next(c for c in INVALID if c.id == "latitude-95").manifest()
    with pytest.raises(ValidationError, match=r"spec\.location\.latitude"):
        AIFactoryModule.from_manifest(doc)


def test_wrong_kind_is_rejected() -> None:
    doc = next(d for d in SAMPLE_DOCS if d["kind"] == "AIFactoryModule")
    with pytest.raises(ValidationError, match="kind"):
        InferenceDeployment.from_manifest(doc)


def test_snake_case_names_are_accepted_too() -> None:
    spec = InferenceDeploymentSpec.model_validate(
        {"model": {"name": "m", "image": "i"}, "throughput_per_replica": 10}
    )
    assert spec.throughput_per_replica == 10


def _deployment(
    replicas: dict[str, int],
    rps: list[float],
    *,
    headroom: float = 0.0,
    throughput: float | None = 10,
) -> InferenceDeploymentSpec:
    regions = [
        {
            "name": f"r{i}",
            "country": "IE",
            "latitude": 53.0,
            "longitude": -6.0,
            "requestsPerSecond": r,
        }
        for i, r in enumerate(rps)
    ]
    spec: dict[str, Any] = {
        "model": {"name": "m", "image": "i"},
        "replicas": replicas,
        "demand": {"headroom": headroom, "regions": regions},
    }
    if throughput is not None:
        spec["throughputPerReplica"] = throughput
    return InferenceDeploymentSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("replicas", "rps", "headroom", "per_region", "total"),
    [
        # n_r = ceil(rps * (1 + headroom) / throughput), throughput 10.
        ({"min": 1, "max": 100}, [95, 5], 0.0, [10, 1], 11),
        ({"min": 1, "max": 100}, [100], 0.1, [11], 11),  # 110.00000000000001 is still 11
        ({"min": 1, "max": 100}, [100], 0.2, [12], 12),
        ({"min": 1, "max": 100}, [101], 0.0, [11], 11),
        ({"min": 5, "max": 100}, [10, 0], 0.0, [1, 0], 5),  # clamped up to min
        ({"min": 1, "max": 8}, [300], 0.2, [36], 8),  # clamped down to max
        ({"min": 2}, [1000], 0.0, [100], 100),  # no max: unbounded
        ({}, [0], 0.0, [0], 1),  # default min is 1
        ({"fixed": 4}, [500], 0.0, [50], 4),  # fixed wins over demand
    ],
)
def test_replicas_needed(
    replicas: dict[str, int], rps: list[float], headroom: float, per_region: list[int], total: int
) -> None:
    spec = _deployment(replicas, rps, headroom=headroom)
    assert list(spec.replicas_per_region().values()) == per_region
    assert spec.replicas_needed() == total


@pytest.mark.parametrize(
    ("replicas", "total"), [({"fixed": 6}, 6), ({"min": 3, "max": 9}, 3), ({}, 1)]
)
def test_replicas_needed_without_demand(replicas: dict[str, int], total: int) -> None:
    spec = _deployment(replicas, [], throughput=None)
    assert spec.replicas_needed() == total


def test_replicas_of_the_samples() -> None:
    assistant = sample(InferenceDeployment, "eu-assistant")
    assert assistant.replicas_per_region() == {"eu-west": 9, "eu-central": 15, "eu-north": 5}
    assert assistant.replicas_needed() == 29
    assert assistant.ref == "eu-chat/eu-assistant"
    assert sample(InferenceDeployment, "support-classifier").replicas_needed() == 16
    assert sample(InferenceDeployment, "nightly-summarizer").replicas_needed() == 6


def test_renewable_share() -> None:
    assert sample(AIFactoryModule, "reykjavik").renewable_share() == pytest.approx(1.0)
    assert sample(AIFactoryModule, "paris").renewable_share() == pytest.approx(0.24)  # not nuclear
    assert sample(AIFactoryModule, "frankfurt").renewable_share() == pytest.approx(0.35)
    assert sample(AIFactoryModule, "warsaw").renewable_share() == pytest.approx(0.15)
    assert EnergySourceType.GEOTHERMAL.renewable and not EnergySourceType.NUCLEAR.renewable


def test_effective_energy_prefers_live_status() -> None:
    module = sample(AIFactoryModule, "frankfurt")
    assert module.effective_carbon_intensity() == 380
    assert module.effective_renewable_share() == pytest.approx(0.35)
    live = module.model_copy(
        update={
            "status": AIFactoryModuleStatus(
                energy=EnergyStatus(carbon_intensity=120, renewable_share=0.8)
            )
        }
    )
    assert live.effective_carbon_intensity() == 120
    assert live.effective_renewable_share() == 0.8
    partial = module.model_copy(update={"status": AIFactoryModuleStatus(energy=EnergyStatus())})
    assert partial.effective_carbon_intensity() == 380


def test_module_readiness_and_status_summary() -> None:
    module = sample(AIFactoryModule, "oslo")
    assert not module.is_ready()
    status = AIFactoryModuleStatus(
        conditions=[Condition(type="Ready", status=ConditionStatus.TRUE, reason="Heartbeat")],
        capacity=ModuleCapacityStatus(
            gpus=[
                GpuPoolStatus(model="H100", gpus_allocatable=32, gpus_allocated=10),
                GpuPoolStatus(model="L40S", gpus_allocatable=48, gpus_allocated=0),
            ]
        ),
    ).summarized()
    assert (status.gpus_total, status.gpus_free) == (80, 70)
    ready = module.model_copy(update={"status": status})
    assert ready.is_ready()
    assert ready.to_manifest()["status"]["gpusFree"] == 70


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({}, {"a": "b"}, True),
        (
            {"matchLabels": {"aifactory.dev/residency": "eu"}},
            {"aifactory.dev/residency": "eu"},
            True,
        ),
        (
            {"matchLabels": {"aifactory.dev/residency": "eu"}},
            {"aifactory.dev/residency": "us"},
            False,
        ),
        ({"matchLabels": {"aifactory.dev/residency": "eu"}}, {}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            {"tier": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]},
            {"tier": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
        (
            {
                "matchLabels": {"x": "1"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            {"x": "1"},
            False,
        ),
    ],
)
def test_label_selector(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is matches


def test_label_selector_rejects_values_with_exists() -> None:
    with pytest.raises(ValidationError, match="empty for Exists"):
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}
        )


def test_policy_binding() -> None:
    eu = sample(SovereigntyPolicy, "eu-restricted-data")
    audit = sample(SovereigntyPolicy, "confidential-no-five-eyes")
    assistant = sample(InferenceDeployment, "eu-assistant")
    classifier = sample(InferenceDeployment, "support-classifier")
    summarizer = sample(InferenceDeployment, "nightly-summarizer")
    eu_ns = {"aifactory.dev/residency": "eu"}
    global_ns = {"aifactory.dev/residency": "global"}
    assert eu.enforced and eu.spec.enforcement is Enforcement.ENFORCE
    assert eu.binds(assistant, eu_ns)
    assert not eu.binds(classifier, global_ns)
    assert audit.binds(classifier, global_ns) and not audit.enforced
    assert not audit.binds(assistant, eu_ns)  # restricted, not confidential
    assert not audit.binds(summarizer, global_ns)
    # Naming a policy binds it whatever the selectors say.
    named = summarizer.model_copy(deep=True)
    named.spec.sovereignty_policies.append("eu-restricted-data")
    assert eu.binds(named, global_ns)
    assert summarizer.spec.data_classification is DataClassification.INTERNAL


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    conds = set_condition(
        [], Condition(type="Ready", status=ConditionStatus.TRUE, reason="Up"), now=t0
    )
    conds = set_condition(
        conds, Condition(type="Ready", status=ConditionStatus.TRUE, reason="StillUp"), now=t1
    )
    assert len(conds) == 1 and conds[0].last_transition_time == t0 and conds[0].reason == "StillUp"
    conds = set_condition(
        conds, Condition(type="Ready", status=ConditionStatus.FALSE, reason="Down"), now=t1
    )
    assert conds[0].last_transition_time == t1
    manifest = conds[0].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert manifest["lastTransitionTime"] == "2025-01-01T00:05:00Z"


def test_condition_reason_must_be_camel_case() -> None:
    with pytest.raises(ValidationError, match="reason"):
        Condition(type="Ready", status=ConditionStatus.TRUE, reason="not camel case")


def test_status_summaries() -> None:
    status = InferenceDeploymentStatus(
        replicas=5,
        ready_replicas=3,
        placements=[
            ModulePlacement(module="oslo", replicas=3, regions={"eu-north": 3}),
            ModulePlacement(module="paris", replicas=2),
            ModulePlacement(module="warsaw", replicas=0),
        ],
    ).summarized()
    assert (status.module_count, status.replicas_summary) == (2, "3/5")
    policy = SovereigntyPolicyStatus(bound_deployments=["eu-chat/eu-assistant"]).summarized()
    assert policy.bound_count == 1


def test_status_tolerates_unknown_fields() -> None:
    # kopf and newer operator versions may write fields this version does not know.
    status = InferenceDeploymentStatus.model_validate({"kopf": {"progress": {}}, "replicas": 2})
    assert status.replicas == 2


def test_object_meta_keeps_unknown_fields() -> None:
    doc = next(d for d in SAMPLE_DOCS if d["kind"] == "AIFactoryModule")
    doc = {
        **doc,
        "metadata": {
            **doc["metadata"],
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "resourceVersion": "42",
            "generation": 3,
        },
    }
    module = AIFactoryModule.from_manifest(doc)
    assert module.metadata.resource_version == "42" and module.metadata.generation == 3
    assert module.to_manifest()["metadata"]["creationTimestamp"] == "2025-01-01T00:00:00Z"
