"""spec.energy.signal and the new status.energy fields against a real apiserver."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from tests.api.api_invalid_manifests import base
from tests.api.test_carbon_signal_api import SECRET
from tests.api.test_crds_server import CRD_NAMES, CRDS

pytestmark = pytest.mark.fleet

Kubectl = Callable[..., Any]
MANAGER = "aifactory-signal-tests"


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "--force-conflicts", "-f", str(CRDS)
    )
    for name in CRD_NAMES:
        kubectl("wait", "--for", "condition=established", "--timeout=60s", f"crd/{name}")


def module(name: str, signal: dict[str, Any]) -> dict[str, Any]:
    doc = base("AIFactoryModule")
    doc["metadata"] = {"name": name}
    doc["spec"]["energy"]["signal"] = signal
    return doc


@pytest.mark.parametrize(
    ("signal", "defaults"),
    [
        (
            {"provider": "ElectricityMaps", "zone": "US-CAL-CISO", "credentialsSecretRef": SECRET},
            {"timeoutSeconds": 10},
        ),
        ({"provider": "WattTime", "zone": "CAISO_NORTH", "credentialsSecretRef": SECRET}, {}),
        ({"provider": "NationalGridESO", "zone": "GB"}, {}),
        (
            {"provider": "CSV", "zone": "PL", "csv": {"path": "/data/ci.csv"}},
            {"csv": {"path": "/data/ci.csv", "replay": "None"}},
        ),
    ],
    ids=["electricitymaps", "watttime", "ngeso", "csv"],
)
def test_valid_signals_are_accepted_with_defaults(
    kubectl: Kubectl, crds: None, signal: dict[str, Any], defaults: dict[str, Any]
) -> None:
    proc = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--field-manager={MANAGER}",
        "-o",
        "json",
        "-f",
        "-",
        input=yaml.safe_dump(module("signal-ok", signal), sort_keys=False),
    )
    applied = json.loads(proc.stdout)["spec"]["energy"]["signal"]
    for key, value in {**signal, **defaults}.items():
        assert applied[key] == value


def test_status_energy_carries_the_method(kubectl: Kubectl, crds: None) -> None:
    doc = module("signal-status", {"provider": "NationalGridESO", "zone": "GB"})
    kubectl(
        "apply", "--server-side", f"--field-manager={MANAGER}", "-f", "-", input=yaml.safe_dump(doc)
    )
    try:
        energy = {
            "carbonIntensity": 101,
            "renewableShare": 0.4,
            "updatedAt": "2024-06-21T12:10:00Z",
            "source": "signal",
            "provider": "NationalGridESO",
            "zone": "GB",
            "signalType": "average",
            "emissionFactorType": "direct",
            "estimated": False,
            "dataTime": "2024-06-21T11:30:00Z",
        }
        kubectl(
            "patch",
            "aifactorymodule",
            "signal-status",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"energy": energy}}),
        )
        got = json.loads(kubectl("get", "aifactorymodule", "signal-status", "-o", "json").stdout)
        assert got["status"]["energy"] == energy
        bad = kubectl(
            "patch",
            "aifactorymodule",
            "signal-status",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"energy": {"signalType": "median"}}}),
            check=False,
        )
        assert bad.returncode != 0 and "signalType" in bad.stderr
    finally:
        kubectl(
            "delete",
            "aifactorymodule",
            "signal-status",
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )
