"""spec.energy.signal as users write it, for each provider, and the status fields it feeds."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.api_invalid_manifests import base

from aifactory.api import AIFactoryModule, CarbonSignalProvider, CsvReplay, EmissionFactorType

SECRET = {"namespace": "aifactory-system", "name": "carbon-feed"}


@pytest.mark.parametrize(
    "signal",
    [
        {"provider": "ElectricityMaps", "zone": "US-CAL-CISO", "credentialsSecretRef": SECRET},
        {
            "provider": "ElectricityMaps",
            "zone": "DE",
            "credentialsSecretRef": SECRET,
            "emissionFactorType": "direct",
            "url": "https://em-proxy.internal",
        },
        {"provider": "WattTime", "zone": "CAISO_NORTH", "credentialsSecretRef": SECRET},
        {"provider": "NationalGridESO", "zone": "GB", "timeoutSeconds": 30},
        {
            "provider": "CSV",
            "zone": "IS",
            "csv": {"configMapKeyRef": {"namespace": "demo", "name": "ci-2022", "key": "IS.csv"}},
        },
        {"provider": "CSV", "zone": "PL", "csv": {"path": "/data/ci.csv.gz", "replay": "Year"}},
    ],
    ids=lambda s: f"{s['provider']}-{s['zone']}",
)
def test_valid_signals_parse_and_round_trip(signal: dict[str, Any]) -> None:
    doc = base("AIFactoryModule")
    doc["spec"]["energy"]["signal"] = signal
    module = AIFactoryModule.from_manifest(doc)
    parsed = module.spec.energy.signal
    assert parsed is not None and parsed.provider == CarbonSignalProvider(signal["provider"])
    again = module.model_dump(by_alias=True, exclude_none=True, mode="json")["spec"]["energy"]
    assert subset(signal, again["signal"])


def subset(small: Any, big: Any) -> bool:
    """Whether every key of `small` is in `big` with the same value (defaults may be added)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and subset(v, big[k]) for k, v in small.items()
        )
    return bool(small == big)


def test_defaults() -> None:
    doc = base("AIFactoryModule")
    doc["spec"]["energy"]["signal"] = {"provider": "CSV", "zone": "PL", "csv": {"path": "/d.csv"}}
    signal = AIFactoryModule.from_manifest(doc).spec.energy.signal
    assert signal is not None and signal.csv is not None
    assert signal.csv.replay is CsvReplay.NONE and signal.timeout_seconds == 10
    assert signal.emission_factor_type is None and signal.url is None
    assert EmissionFactorType("lifecycle") is EmissionFactorType.LIFECYCLE
