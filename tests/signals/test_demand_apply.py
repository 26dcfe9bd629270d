"""apply_demand: live rates replace declared ones by region name, never by accident to zero."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from pydantic import ValidationError

from aifactory.api.deployment import (
    PROMETHEUS_NEEDS_REGIONS_MESSAGE,
    PROMETHEUS_URL_MESSAGE,
    InferenceDeployment,
    PrometheusDemandSource,
)
from aifactory.signals.demand import (
    REASON_BAD_RESULT,
    REASON_EMPTY_SAMPLE,
    DemandSignalError,
    apply_demand,
    unmatched_regions,
)

REGIONS = [
    {
        "name": "eu-west",
        "country": "IE",
        "latitude": 53.35,
        "longitude": -6.26,
        "requestsPerSecond": 300,
    },
    {
        "name": "us-east",
        "country": "US",
        "latitude": 38.9,
        "longitude": -77.0,
        "requestsPerSecond": 100,
    },
]
PROMETHEUS = {"url": "http://prometheus:9090", "query": "sum by (region) (rate(x[1m]))"}


def deployment(**demand: Any) -> InferenceDeployment:
    return InferenceDeployment.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": "chat", "namespace": "ml"},
            "spec": {
                "model": {"name": "chat", "image": "serve:1"},
                "replicas": {"min": 1, "max": 50},
                "throughputPerReplica": 50,
                "demand": {"headroom": 0.0, "regions": REGIONS, **demand},
            },
        }
    )


def rps(infd: InferenceDeployment) -> dict[str, float]:
    return {r.name: r.requests_per_second for r in infd.spec.demand.regions}


@pytest.mark.parametrize(
    ("sample", "expected", "replicas"),
    [
        (
            {"eu-west": 500, "us-east": 50},
            {"eu-west": 500, "us-east": 50},
            {"eu-west": 10, "us-east": 1},
        ),
        # a region missing from the sample keeps its declared rate
        ({"eu-west": 1000}, {"eu-west": 1000, "us-east": 100}, {"eu-west": 20, "us-east": 2}),
        # zero is a real reading for one region when others have data
        (
            {"eu-west": 0.0, "us-east": 250},
            {"eu-west": 0, "us-east": 250},
            {"eu-west": 0, "us-east": 5},
        ),
        # extra regions are ignored
        (
            {"us-east": 75.5, "ap-south": 999},
            {"eu-west": 300, "us-east": 75.5},
            {"eu-west": 6, "us-east": 2},
        ),
    ],
)
def test_apply_demand(
    sample: dict[str, float], expected: dict[str, float], replicas: dict[str, int]
) -> None:
    original = deployment()
    updated = apply_demand(original, sample)
    assert rps(updated) == expected
    assert updated.replicas_per_region() == replicas
    # the input is left alone and everything but the rates is kept
    assert rps(original) == {"eu-west": 300, "us-east": 100}
    assert updated.spec.demand.headroom == original.spec.demand.headroom
    assert [(r.name, r.country) for r in updated.spec.demand.regions] == [
        ("eu-west", "IE"),
        ("us-east", "US"),
    ]
    assert updated.metadata == original.metadata
    # the result is still a valid object
    assert InferenceDeployment.from_manifest(updated.to_manifest()) == updated


def test_apply_keeps_the_prometheus_source() -> None:
    original = deployment(prometheus=PROMETHEUS)
    updated = apply_demand(original, {"eu-west": 1})
    assert updated.spec.demand.prometheus == original.spec.demand.prometheus


def test_empty_sample_is_refused() -> None:
    with pytest.raises(DemandSignalError) as info:
        apply_demand(deployment(), {})
    assert info.value.reason == REASON_EMPTY_SAMPLE
    assert "ml/chat" in info.value.message


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_unusable_values_are_refused(value: float) -> None:
    with pytest.raises(DemandSignalError) as info:
        apply_demand(deployment(), {"eu-west": value})
    assert info.value.reason == REASON_BAD_RESULT


def test_extra_regions_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    infd = deployment()
    sample = {"us-east": 1, "zz-2": 3, "ap-south": 2}
    assert unmatched_regions(infd, sample) == ["ap-south", "zz-2"]
    with caplog.at_level(logging.WARNING, logger="aifactory.signals.demand"):
        apply_demand(infd, sample)
    assert "ml/chat: ignoring demand for undeclared regions ap-south, zz-2" in caplog.text


def test_only_extra_regions_keep_declared_demand() -> None:
    updated = apply_demand(deployment(), {"mars": 10})
    assert rps(updated) == {"eu-west": 300, "us-east": 100}


# -- the PrometheusDemandSource model ---------------------------------------------------------


def test_prometheus_source_defaults_and_wire_names() -> None:
    infd = deployment(prometheus=PROMETHEUS)
    source = infd.spec.demand.prometheus
    assert source == PrometheusDemandSource(
        url="http://prometheus:9090",
        query="sum by (region) (rate(x[1m]))",
        region_label="region",
        timeout_seconds=5,
    )
    wire = deployment(
        prometheus={**PROMETHEUS, "regionLabel": "zone", "timeoutSeconds": 2.5}
    ).to_manifest()["spec"]["demand"]["prometheus"]
    assert wire == {**PROMETHEUS, "regionLabel": "zone", "timeoutSeconds": 2.5}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "prometheus:9090"}, PROMETHEUS_URL_MESSAGE),
        ({"url": "ftp://prometheus"}, PROMETHEUS_URL_MESSAGE),
        ({"url": ""}, "at least 1 character"),
        ({"query": ""}, "at least 1 character"),
        ({"regionLabel": "re-gion"}, "should match pattern"),
        ({"timeoutSeconds": 0}, "greater than 0"),
        ({"timeoutSeconds": 61}, "less than or equal to 60"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_prometheus_source_validation(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        deployment(prometheus={**PROMETHEUS, **change})


def test_prometheus_needs_regions() -> None:
    with pytest.raises(ValidationError, match=PROMETHEUS_NEEDS_REGIONS_MESSAGE.split(":")[0]):
        InferenceDeployment.from_manifest(
            {
                "kind": "InferenceDeployment",
                "metadata": {"name": "x"},
                "spec": {
                    "model": {"name": "m", "image": "i"},
                    "demand": {"prometheus": PROMETHEUS},
                },
            }
        )


def test_a_reading_beyond_the_api_limit_is_refused_not_applied() -> None:
    """A live reading of 1e300 once overflowed int() in every handler; it is a bad reading."""
    from aifactory.signals.demand import REASON_OUT_OF_RANGE, DemandSignalError, apply_demand

    infd = deployment()
    with pytest.raises(DemandSignalError) as err:
        apply_demand(infd, {infd.spec.demand.regions[0].name: 1e300})
    assert err.value.reason == REASON_OUT_OF_RANGE
    assert "1e+300" in err.value.message
