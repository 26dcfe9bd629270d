"""Fixtures of the chart tests: the hub with the stand-in third-party CRDs, and the samples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
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


def apply_samples(kubectl: Any) -> None:
    """CRDs (as the chart ships them), namespaces, policies and modules of samples/."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(REPO / "charts" / "aifactory-operator" / "crds"),
    )
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=aifactory",
    )
    for name in ("namespaces.yaml", "policies.yaml", "modules.yaml"):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "samples" / name))
