"""Keep the last good reading, fall back to the declared value with a reason, never mix
methods, and warn about a fleet whose feeds do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aifactory.api import AIFactoryModule
from aifactory.api.carbon_signal import CarbonSignalProvider, EmissionFactorType, SignalType
from aifactory.signals.carbon import (
    CONDITION_ENERGY_SIGNAL,
    REASON_LAST_GOOD,
    REASON_METHOD_MISMATCH,
    REASON_MIXED_METHODS,
    REASON_NO_READING,
    REASON_SIGNAL_CURRENT,
    REASON_STALE,
    REASON_UNAUTHORIZED,
    CarbonReading,
    CarbonSignalError,
    SignalMethod,
    SignalState,
    effective_energy,
    method_mismatch,
    method_of,
    record,
)
from aifactory.signals.energy import operator_owns_energy

NOW = datetime(2025, 6, 21, 12, 30, tzinfo=UTC)
LIMIT = timedelta(hours=3)
AVG_LCA = SignalMethod(SignalType.AVERAGE, EmissionFactorType.LIFECYCLE)
MARGINAL = SignalMethod(SignalType.MARGINAL, EmissionFactorType.DIRECT)


def module(signal: dict[str, Any] | None = None, **energy: Any) -> AIFactoryModule:
    spec_energy: dict[str, Any] = {
        "sources": [{"type": "solar", "share": 0.6}, {"type": "grid", "share": 0.4}],
        "carbonIntensity": 250,
        "powerBudgetKW": 300,
        **energy,
    }
    if signal is not None:
        spec_energy["signal"] = signal
    return AIFactoryModule.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "AIFactoryModule",
            "metadata": {"name": "frankfurt"},
            "spec": {
                "location": {"country": "DE", "latitude": 50.11, "longitude": 8.68},
                "energy": spec_energy,
                "capacity": {
                    "gpus": [{"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700}]
                },
                "cluster": {"nodeSelector": {"aifactory.dev/module": "frankfurt"}},
            },
        }
    )


EM_SIGNAL = {
    "provider": "ElectricityMaps",
    "zone": "DE",
    "credentialsSecretRef": {"namespace": "aifactory-system", "name": "em"},
}


def reading(
    value: float = 310.0, *, age: timedelta = timedelta(minutes=30), **kw: Any
) -> CarbonReading:
    args: dict[str, Any] = {
        "carbon_intensity": value,
        "signal_type": SignalType.AVERAGE,
        "emission_factor_type": EmissionFactorType.LIFECYCLE,
        "data_time": NOW - age,
        "read_at": NOW,
        "estimated": False,
        "zone": "DE",
        "provider": CarbonSignalProvider.ELECTRICITY_MAPS,
        **kw,
    }
    return CarbonReading(**args)


UNAUTHORIZED = CarbonSignalError(REASON_UNAUTHORIZED, "ElectricityMaps refused the credentials")


def test_record_keeps_the_last_good_reading_across_errors() -> None:
    first = record(None, reading(300))
    assert first == SignalState(reading(300), None)
    failed = record(first, UNAUTHORIZED)
    assert failed.last_good == reading(300) and failed.last_error is UNAUTHORIZED
    again = record(failed, reading(320, age=timedelta(minutes=5)))
    assert again == SignalState(reading(320, age=timedelta(minutes=5)), None)


def test_record_never_moves_time_backwards() -> None:
    state = record(None, reading(300, age=timedelta(minutes=5)))
    older = record(state, reading(999, age=timedelta(hours=2)))
    assert older.last_good is not None and older.last_good.carbon_intensity == 300
    # ... unless the method changed (the spec now asks for other factors): the new one counts.
    direct = reading(280, age=timedelta(hours=2), emission_factor_type=EmissionFactorType.DIRECT)
    assert record(state, direct).last_good == direct


def test_fresh_reading_is_used_with_its_method_in_status() -> None:
    m = module(EM_SIGNAL)
    e = effective_energy(m, record(None, reading(310)), now=NOW, max_age=LIMIT, basis=AVG_LCA)
    assert (e.carbon_intensity, e.source, e.in_use, e.reason) == (
        310,
        "signal",
        True,
        REASON_SIGNAL_CURRENT,
    )
    assert e.renewable_share == pytest.approx(0.6)  # feeds give intensity only
    status = e.to_status(NOW)
    assert status.carbon_intensity == 310 and status.source == "signal"
    assert (status.provider, status.zone) == ("ElectricityMaps", "DE")
    assert (status.signal_type, status.emission_factor_type) == (
        SignalType.AVERAGE,
        EmissionFactorType.LIFECYCLE,
    )
    assert status.estimated is False and status.data_time == NOW - timedelta(minutes=30)
    assert operator_owns_energy(status)  # the operator keeps writing it
    cond = e.condition(observed_generation=3)
    assert cond is not None and (cond.type, cond.status.value, cond.reason) == (
        CONDITION_ENERGY_SIGNAL,
        "True",
        REASON_SIGNAL_CURRENT,
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["signalType"] == "average" and dumped["emissionFactorType"] == "lifecycle"


def test_a_failed_poll_keeps_a_fresh_last_good_value() -> None:
    state = record(record(None, reading(310)), UNAUTHORIZED)
    e = effective_energy(module(EM_SIGNAL), state, now=NOW, max_age=LIMIT)
    assert e.carbon_intensity == 310 and e.in_use
    assert e.reason == REASON_LAST_GOOD
    assert "latest poll failed: Unauthorized" in e.message


def test_stale_reading_falls_back_to_the_spec_value_with_the_reason() -> None:
    state = record(record(None, reading(310, age=timedelta(hours=4))), UNAUTHORIZED)
    e = effective_energy(module(EM_SIGNAL), state, now=NOW, max_age=LIMIT)
    assert (e.carbon_intensity, e.source, e.in_use, e.reason) == (250, "spec", False, REASON_STALE)
    assert "older than 10800s" in e.message and "last poll: Unauthorized" in e.message
    assert "using the spec value 250 gCO2e/kWh" in e.message
    status = e.to_status(NOW)
    assert status.source == "spec" and status.signal_type is None and status.provider is None


def test_stale_reading_falls_back_to_the_schedule_when_one_covers_the_hour() -> None:
    m = module(
        EM_SIGNAL,
        schedule=[{"fromHour": 8, "toHour": 18, "carbonIntensity": 40, "renewableShare": 0.9}],
    )
    e = effective_energy(m, None, now=NOW, max_age=LIMIT)
    assert (e.carbon_intensity, e.source, e.reason) == (40, "schedule", REASON_NO_READING)


def test_no_reading_yet_reports_the_poll_error() -> None:
    e = effective_energy(module(EM_SIGNAL), record(None, UNAUTHORIZED), now=NOW, max_age=LIMIT)
    assert (e.in_use, e.reason) == (False, REASON_UNAUTHORIZED)
    assert e.message.startswith("ElectricityMaps DE: ElectricityMaps refused the credentials")


def test_a_reading_of_another_method_is_never_used() -> None:
    moer = reading(
        420,
        signal_type=SignalType.MARGINAL,
        emission_factor_type=EmissionFactorType.DIRECT,
        zone="CAISO_NORTH",
        provider=CarbonSignalProvider.WATTTIME,
    )
    wt = {**EM_SIGNAL, "provider": "WattTime", "zone": "CAISO_NORTH"}
    e = effective_energy(module(wt), record(None, moer), now=NOW, max_age=LIMIT, basis=AVG_LCA)
    assert (e.carbon_intensity, e.in_use, e.reason) == (250, False, REASON_METHOD_MISMATCH)
    assert "gives marginal/direct intensities; the fleet compares average/lifecycle" in e.message
    # Without a fleet basis it is used (and method_mismatch is what warns).
    assert effective_energy(module(wt), record(None, moer), now=NOW, max_age=LIMIT).in_use


def test_a_reading_from_a_feed_the_spec_no_longer_names_is_dropped() -> None:
    old = record(None, reading(310))  # Electricity Maps DE
    moved = module({**EM_SIGNAL, "zone": "FR"})
    e = effective_energy(moved, old, now=NOW, max_age=LIMIT)
    assert (e.in_use, e.reason) == (False, REASON_NO_READING)
    direct = module({**EM_SIGNAL, "emissionFactorType": "direct"})
    assert effective_energy(direct, old, now=NOW, max_age=LIMIT).in_use is False


def test_module_without_signal_has_no_condition() -> None:
    e = effective_energy(module(), record(None, reading()), now=NOW, max_age=LIMIT)
    assert (e.carbon_intensity, e.in_use, e.condition()) == (250, None, None)


def test_method_mismatch_names_the_odd_modules_out() -> None:
    methods = {"oslo": AVG_LCA, "paris": AVG_LCA, "dallas": MARGINAL, "reykjavik": None}
    mm = method_mismatch(methods)
    assert mm is not None
    assert mm.basis == AVG_LCA and mm.outliers == ("dallas",) and mm.reason == REASON_MIXED_METHODS
    assert mm.message == (
        "carbon signals of different methods cannot be compared: 2 modules average/lifecycle; "
        "1 module marginal/direct (dallas); the fleet compares average/lifecycle"
    )
    assert method_mismatch({"oslo": AVG_LCA, "paris": AVG_LCA, "x": None}) is None
    assert method_mismatch({}) is None
    forced = method_mismatch({"oslo": AVG_LCA}, basis=MARGINAL)
    assert forced is not None and forced.outliers == ("oslo",)


def test_method_of_status() -> None:
    e = effective_energy(module(EM_SIGNAL), record(None, reading()), now=NOW, max_age=LIMIT)
    assert method_of(e.to_status(NOW)) == AVG_LCA
    assert method_of(None) is None
    assert (
        method_of(effective_energy(module(), None, now=NOW, max_age=LIMIT).to_status(NOW)) is None
    )
