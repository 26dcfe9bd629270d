"""What to do with readings: keep the last good one, fall back when it is stale or of another
method, and spot a fleet whose feeds do not measure the same thing.

All pure: the poller keeps a `SignalState` per module, feeds each poll's outcome (a reading or
a CarbonSignalError) to `record`, and asks `effective_energy` what status.energy should say and
which EnergySignal condition to set. `method_mismatch` looks at the whole fleet for a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aifactory.api.carbon_signal import CarbonSignal
from aifactory.api.common import Condition, ConditionStatus
from aifactory.api.module import AIFactoryModule, EnergyStatus
from aifactory.signals.carbon.reading import (
    REASON_METHOD_MISMATCH,
    REASON_STALE,
    SOURCE_SIGNAL,
    CarbonReading,
    CarbonSignalError,
    SignalMethod,
    check_now,
)
from aifactory.signals.energy import declared_energy

#: Condition type on AIFactoryModule status: True while a live reading is in use.
CONDITION_ENERGY_SIGNAL = "EnergySignal"
#: Reasons of that condition besides the CarbonSignalError reasons (Stale, MethodMismatch,
#: Unauthorized, ...), which it carries when the spec value is used instead.
REASON_SIGNAL_CURRENT = "SignalCurrent"
REASON_LAST_GOOD = "LastGoodValue"
REASON_NO_READING = "NoReadingYet"
#: Reason of the fleet-wide warning from `method_mismatch`.
REASON_MIXED_METHODS = "MixedSignalMethods"


@dataclass(frozen=True, slots=True)
class SignalState:
    """What the poller keeps per module between polls: the last good reading and the last
    poll's error (None after a success)."""

    last_good: CarbonReading | None = None
    last_error: CarbonSignalError | None = None


def record(state: SignalState | None, outcome: CarbonReading | CarbonSignalError) -> SignalState:
    """Keep-last-good: a reading replaces the last good one, an error is remembered beside it.

    A reading older than the last good one of the same method (a lagging mirror, a replayed
    answer) does not move time backwards; the last good one stays.
    """
    prev = state or SignalState()
    if isinstance(outcome, CarbonSignalError):
        return SignalState(prev.last_good, outcome)
    last = prev.last_good
    if (
        last is not None
        and last.method == outcome.method
        and (last.provider, last.zone) == (outcome.provider, outcome.zone)
        and outcome.data_time < last.data_time
    ):
        return SignalState(last, None)
    return SignalState(outcome, None)


@dataclass(frozen=True, slots=True)
class EffectiveEnergy:
    """What status.energy should hold now, and why.

    `signal` is the live reading in use (None when the declared value is used); `in_use` is
    the EnergySignal condition's status (None when the module has no signal: no condition).
    """

    carbon_intensity: float
    renewable_share: float
    source: str
    signal: CarbonReading | None
    in_use: bool | None
    reason: str
    message: str

    def to_status(self, updated_at: datetime) -> EnergyStatus:
        """status.energy: the reading with its method, or the declared values."""
        if self.signal is not None:
            return self.signal.to_status(
                renewable_share=self.renewable_share, updated_at=updated_at
            )
        return EnergyStatus(
            carbon_intensity=self.carbon_intensity,
            renewable_share=self.renewable_share,
            updated_at=updated_at,
            source=self.source,
        )

    def condition(self, *, observed_generation: int | None = None) -> Condition | None:
        """The EnergySignal condition (None for a module without spec.energy.signal)."""
        if self.in_use is None:
            return None
        return Condition(
            type=CONDITION_ENERGY_SIGNAL,
            status=ConditionStatus.TRUE if self.in_use else ConditionStatus.FALSE,
            reason=self.reason,
            message=self.message,
            observed_generation=observed_generation,
        )


def _same_feed(reading: CarbonReading, signal: CarbonSignal) -> bool:
    """Whether a kept reading still answers the module's current spec (provider, zone and
    requested factors may have been edited since)."""
    if reading.provider is not signal.provider or reading.zone != signal.zone:
        return False
    wanted = signal.emission_factor_type
    return wanted is None or reading.emission_factor_type is wanted


def effective_energy(
    module: AIFactoryModule,
    state: SignalState | None,
    *,
    now: datetime,
    max_age: timedelta,
    basis: SignalMethod | None = None,
) -> EffectiveEnergy:
    """The energy reading placement should use for `module` now.

    The last good reading of spec.energy.signal when there is one for the current spec, it is
    at most `max_age` old and (when `basis` is given) of the fleet's method; otherwise the
    declared value (schedule, else spec) with the reason: the poll's error reason, NoReadingYet,
    Stale or MethodMismatch. The renewable share is always the declared one (feeds give
    intensity only). A fresh last good reading after a failed poll is used with reason
    LastGoodValue, the error in the message.
    """
    now = check_now(now)
    declared = declared_energy(module, now)
    signal = module.spec.energy.signal
    if signal is None:
        return EffectiveEnergy(
            declared.carbon_intensity,
            declared.renewable_share,
            declared.source,
            None,
            None,
            "NotConfigured",
            "",
        )
    st = state or SignalState()
    good = st.last_good if st.last_good is not None and _same_feed(st.last_good, signal) else None
    err = st.last_error
    feed = f"{signal.provider.value} {signal.zone}"

    def fallback(reason: str, message: str) -> EffectiveEnergy:
        return EffectiveEnergy(
            declared.carbon_intensity,
            declared.renewable_share,
            declared.source,
            None,
            False,
            reason,
            f"{message}; using the {declared.source} value {declared.carbon_intensity:g} gCO2e/kWh",
        )

    if good is None:
        if err is not None:
            return fallback(err.reason, f"{feed}: {err.message}")
        return fallback(REASON_NO_READING, f"{feed}: no reading yet")
    if good.age(now) > max_age:
        message = (
            f"{feed}: last reading is for {good.data_time.isoformat()}, older than "
            f"{max_age.total_seconds():g}s"
        )
        if err is not None:
            message += f" (last poll: {err.reason}: {err.message})"
        return fallback(REASON_STALE, message)
    if basis is not None and good.method != basis:
        return fallback(
            REASON_METHOD_MISMATCH,
            f"{feed} gives {good.method} intensities; the fleet compares {basis}",
        )
    message = (
        f"{feed}: {good.carbon_intensity:g} gCO2e/kWh ({good.method}"
        f"{', estimated' if good.estimated else ''}) for {good.data_time.isoformat()}"
    )
    reason = REASON_SIGNAL_CURRENT
    if err is not None:
        reason = REASON_LAST_GOOD
        message += f"; latest poll failed: {err.reason}: {err.message}"
    return EffectiveEnergy(
        good.carbon_intensity,
        declared.renewable_share,
        SOURCE_SIGNAL,
        good,
        True,
        reason,
        message,
    )


def method_of(status: EnergyStatus | None) -> SignalMethod | None:
    """The method of a module's status.energy, or None when it carries no method (spec,
    schedule, or an external feed that does not say)."""
    if status is None or status.signal_type is None or status.emission_factor_type is None:
        return None
    return SignalMethod(status.signal_type, status.emission_factor_type)


@dataclass(frozen=True, slots=True)
class MethodMismatch:
    """Modules whose intensities are of different methods. `basis` is the method the others
    are measured against (the fleet's setting, else the most common one)."""

    basis: SignalMethod
    modules: Mapping[SignalMethod, tuple[str, ...]]

    @property
    def outliers(self) -> tuple[str, ...]:
        """Modules whose method is not the basis, sorted."""
        return tuple(
            sorted(m for method, ms in self.modules.items() if method != self.basis for m in ms)
        )

    @property
    def reason(self) -> str:
        return REASON_MIXED_METHODS

    @property
    def message(self) -> str:
        """ "2 modules report average/lifecycle intensities, 1 marginal/direct (dallas): ..."."""
        parts = []
        for method, names in sorted(
            self.modules.items(), key=lambda kv: (kv[0] != self.basis, str(kv[0]))
        ):
            n = len(names)
            head = f"{n} module{'s' if n != 1 else ''} {method}"
            parts.append(head if method == self.basis else f"{head} ({', '.join(names)})")
        return (
            f"carbon signals of different methods cannot be compared: {'; '.join(parts)}; "
            f"the fleet compares {self.basis}"
        )


def method_mismatch(
    methods: Mapping[str, SignalMethod | None], *, basis: SignalMethod | None = None
) -> MethodMismatch | None:
    """A warning when modules' live readings are of more than one method (or of another one
    than `basis`); None when they all agree. Modules without a method (None) are left out.

    Without `basis`, the method of most modules is the basis (ties: the first in
    "signal_type/emission_factor_type" order), so the warning names the few odd ones out.
    """
    groups: dict[SignalMethod, list[str]] = {}
    for name, method in sorted(methods.items()):
        if method is not None:
            groups.setdefault(method, []).append(name)
    if not groups:
        return None
    if basis is None:
        basis = min(groups, key=lambda m: (-len(groups[m]), str(m)))
    if set(groups) <= {basis}:
        return None
    return MethodMismatch(basis, {m: tuple(ns) for m, ns in groups.items()})


__all__ = [
    "CONDITION_ENERGY_SIGNAL",
    "REASON_LAST_GOOD",
    "REASON_MIXED_METHODS",
    "REASON_NO_READING",
    "REASON_SIGNAL_CURRENT",
    "EffectiveEnergy",
    "MethodMismatch",
    "SignalState",
    "effective_energy",
    "method_mismatch",
    "method_of",
    "record",
]
