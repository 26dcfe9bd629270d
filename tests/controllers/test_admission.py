"""The admission review (pure): what the webhook refuses, what it only warns about.

A reference to something that may appear later (a SovereigntyPolicy, a PriorityClass) is a
warning, as GitOps tools apply objects in any order; placement waits and says why. Deletion
and metadata-only updates are never refused.
"""

from __future__ import annotations

from typing import Any

from aifactory.controllers.admission import NOT_WARM, review
from aifactory.controllers.fleet import HubSnapshot


def infd(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {
            "model": {"name": "m", "image": "registry.example/m:1"},
            "replicas": {"fixed": 1},
            **spec,
        },
    }


HIGH = {"high": (1000, "PreemptLowerPriority", False)}


def test_a_known_priority_class_is_accepted_quietly() -> None:
    v = review(
        "InferenceDeployment",
        "CREATE",
        infd(priorityClassName="high"),
        None,
        HubSnapshot(priority_classes=HIGH),
    )
    assert v.allowed and not v.warnings


def test_an_unknown_priority_class_is_a_warning_not_a_refusal() -> None:
    v = review(
        "InferenceDeployment",
        "CREATE",
        infd(priorityClassName="later"),
        None,
        HubSnapshot(priority_classes=HIGH),
    )
    assert v.allowed
    assert len(v.warnings) == 1
    assert "later" in v.warnings[0] and "PriorityClassNotFound" in v.warnings[0]


def test_a_bad_spec_is_refused_with_the_field_named() -> None:
    v = review("InferenceDeployment", "CREATE", infd(replicas={"fixed": -1}), None, HubSnapshot())
    assert not v.allowed and v.code == 422
    assert "spec.replicas.fixed" in v.message


def test_deletion_and_cold_caches() -> None:
    deleting = infd(replicas={"fixed": -1})
    deleting["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    assert review("InferenceDeployment", "UPDATE", deleting, infd(), None).allowed
    assert review("InferenceDeployment", "DELETE", None, infd(), None).allowed
    cold = review("InferenceDeployment", "CREATE", infd(), None, None)
    assert not cold.allowed and cold.code == 503 and cold.message == NOT_WARM
