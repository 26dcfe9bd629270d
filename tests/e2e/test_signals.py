"""Live signals on the real fleet: a module's carbon series (CSV adapter, from a ConfigMap)
drives its status.energy, and a deployment's status.carbon follows (issue #12).

The CSV holds real 2022 Electricity Maps values (ODbL, attribution "Electricity Maps"; see
/work/shared/data/SOURCES.md and tests/signals/data/README.md); the test re-dates two of its
rows to "an hour ago" and "now" so the adapter picks them without replaying a year.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hack.fleet import Fleet
from tests.e2e.helpers import (
    OperatorProcess,
    apply_json,
    condition,
    get_json,
    infd_manifest,
    is_ready,
    placed,
    wait_for,
)

pytestmark = pytest.mark.fleet

NS = "signal-tests"
#: Two hours of Germany's 2022 LCA intensity (ci_lca_2022_hourly_gcp30.csv, 2022-06-21 11:00
#: and 12:00 UTC) and a dirtier one from the same series (2022-01-20 17:00: winter evening).
DE_NOON, DE_WINTER_EVENING = 394.12, 612.35


def series(now_value: float) -> str:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [(now - timedelta(hours=1), DE_NOON), (now, now_value)]
    return "datetime_utc,DE\n" + "".join(
        f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{v}\n" for t, v in rows
    )


def config_map(value: float) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "de-carbon", "namespace": "aifactory-system"},
        "data": {"series.csv": series(value)},
    }


def frankfurt_signal(kubectl: Any, on: bool) -> None:
    signal = (
        {
            "provider": "CSV",
            "zone": "DE",
            "csv": {
                "configMapKeyRef": {
                    "namespace": "aifactory-system",
                    "name": "de-carbon",
                    "key": "series.csv",
                }
            },
        }
        if on
        else None
    )
    kubectl(
        "patch",
        "afm",
        "frankfurt",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"energy": {"signal": signal}}}),
    )


def _wait_ready(kubectl: Any, operator: OperatorProcess, name: str) -> None:
    """Wait for Ready; on a timeout say why: conditions, member pods, the operator's words."""
    try:
        wait_for("Ready", lambda: is_ready(get_json(kubectl, "infd", "-n", NS, name)), timeout=90)
    except AssertionError as err:
        obj = get_json(kubectl, "infd", "-n", NS, name)
        conds = [
            (c["type"], c["status"], c.get("reason"), c.get("message"))
            for c in obj.get("status", {}).get("conditions", [])
        ]
        pods = kubectl("get", "pods", "-n", NS, "-o", "wide", check=False).stdout
        said = [
            line
            for line in operator.log.read_text(errors="replace").splitlines()
            if name in line or "Traceback" in line or "informer" in line
        ][-40:]
        raise AssertionError(
            f"{err}; generation {obj['metadata'].get('generation')}, observed "
            f"{obj.get('status', {}).get('observedGeneration')}; conditions {conds}; "
            f"pods:\n{pods}\noperator log:\n" + "\n".join(said)
        ) from err


@pytest.fixture()
def energy_polled_fast(operator: OperatorProcess) -> Iterator[None]:
    operator.env["AIFACTORY_ENERGY_POLL_INTERVAL"] = "2"
    operator.restart()
    yield
    del operator.env["AIFACTORY_ENERGY_POLL_INTERVAL"]
    operator.restart()


def test_a_csv_carbon_series_drives_module_energy_and_deployment_carbon(
    energy_polled_fast: None, kubectl: Any, fleet: Fleet, operator: OperatorProcess
) -> None:
    kubectl("create", "namespace", NS, check=False)
    apply_json(kubectl, config_map(DE_NOON))
    name = "frankfurt-bound"
    apply_json(
        kubectl,
        infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
                "replicas": {"fixed": 2},
                "placement": {"modules": ["frankfurt"]},
            },
        ),
    )
    try:
        frankfurt_signal(kubectl, True)
        wait_for(
            "frankfurt's status.energy from the CSV feed",
            lambda: (
                (get_json(kubectl, "afm", "frankfurt")["status"].get("energy") or {}).get(
                    "carbonIntensity"
                )
                == DE_NOON
            ),
            timeout=60,
        )
        module = get_json(kubectl, "afm", "frankfurt")
        energy = module["status"]["energy"]
        assert energy["source"] == "signal" and energy["zone"] == "DE"
        assert energy["signalType"] == "average" and energy["emissionFactorType"] == "lifecycle"
        assert (condition(module, "EnergySignal") or {}).get("status") == "True"
        wait_for("placed on frankfurt", lambda: placed(kubectl, NS, name) == {"frankfurt": 2})

        def grams() -> float:
            st = get_json(kubectl, "infd", "-n", NS, name).get("status", {})
            return float((st.get("carbon") or {}).get("gramsPerHour") or 0)

        # 2 L4 GPUs x 72 W x PUE x intensity / 1000
        pue = module["spec"]["energy"]["pue"]
        expected = 2 * 72 * pue * DE_NOON / 1000
        wait_for(
            "status.carbon at noon's intensity",
            lambda: abs(grams() - expected) < 0.01 * expected,
            timeout=60,
        )
        apply_json(kubectl, config_map(DE_WINTER_EVENING))
        later = 2 * 72 * pue * DE_WINTER_EVENING / 1000
        wait_for(
            "status.carbon follows the series",
            lambda: abs(grams() - later) < 0.01 * later,
            timeout=90,
        )
        # a new carbon reading moves nothing and takes nothing down
        _wait_ready(kubectl, operator, name)
        assert placed(kubectl, NS, name) == {"frankfurt": 2}
        # a broken series keeps the last good value and says so
        broken = config_map(DE_WINTER_EVENING)
        broken["data"] = {"series.csv": "no,header\n"}
        apply_json(kubectl, broken)
        cond = wait_for(
            "EnergySignal reports the broken feed",
            lambda: (
                (c := condition(get_json(kubectl, "afm", "frankfurt"), "EnergySignal"))
                and c.get("reason") == "LastGoodValue"
                and c
            ),
            timeout=60,
        )
        assert "Malformed" in cond["message"] or "ZoneNotFound" in cond["message"]
        st = get_json(kubectl, "afm", "frankfurt")["status"]
        assert st["energy"]["carbonIntensity"] == DE_WINTER_EVENING
    finally:
        frankfurt_signal(kubectl, False)
        kubectl("delete", "infd", "-n", NS, name, "--timeout=60s", check=False, timeout=90)
        kubectl("delete", "configmap", "-n", "aifactory-system", "de-carbon", check=False)
