"""Fixtures of the chart tests: the hub with the stand-in third-party CRDs, and the samples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hack.demo import SAMPLE_FILES, install
from hack.demo import apply_samples as demo_samples
from hack.fleet import Fleet
from tests.chart.helpers import REPO, THIRD_PARTY_CRDS


@pytest.fixture(scope="session")
def hub_ready(fleet: Fleet, kubectl: Any) -> Iterator[None]:
    """Members registered (kubeconfig Secrets), stand-in monitoring/cert-manager APIs served."""
    fleet.register_members()
    kubectl("apply", "-f", str(THIRD_PARTY_CRDS))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "aifactory.dev/test=third-party",
    )
    yield


def apply_samples(fleet: Fleet) -> None:
    """CRDs (as the chart ships them), namespaces, policies and modules of samples/."""
    install(fleet, REPO / "charts" / "aifactory-operator" / "crds")
    demo_samples(fleet, SAMPLE_FILES[:3])
