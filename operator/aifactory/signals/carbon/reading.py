"""What every carbon-intensity adapter returns, and the one error family they raise.

A `CarbonReading` is one value in gCO2e/kWh with its method (average or marginal, lifecycle or
direct), the time the value is for, whether the provider estimated it, and the zone. The
method travels with the value all the way to `status.energy`, because an average and a
marginal intensity (or lifecycle and direct factors) of two modules cannot be compared.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aifactory.api.carbon_signal import CarbonSignalProvider, EmissionFactorType, SignalType
from aifactory.api.module import EnergyStatus
from aifactory.signals.energy import SOURCE_SIGNAL

#: Reasons of CarbonSignalError, CamelCase so they can go straight into a condition.
REASON_MALFORMED = "Malformed"
REASON_STALE = "Stale"
REASON_UNIT_MISMATCH = "UnitMismatch"
REASON_METHOD_MISMATCH = "MethodMismatch"
REASON_ZONE_MISMATCH = "ZoneMismatch"
REASON_NO_DATA = "NoData"
REASON_UNAUTHORIZED = "Unauthorized"
REASON_MISSING_CREDENTIALS = "MissingCredentials"
REASON_ZONE_NOT_FOUND = "ZoneNotFound"
REASON_RATE_LIMITED = "RateLimited"
REASON_UNREACHABLE = "Unreachable"
REASON_PROVIDER_ERROR = "ProviderError"

#: 1 lb = 0.45359237 kg exactly (international avoirdupois pound), so 1 lb/MWh =
#: 453.59237 g / 1000 kWh = 0.45359237 g/kWh.
G_PER_KWH_PER_LB_PER_MWH = 0.45359237


class CarbonSignalError(Exception):
    """A feed could not give a usable reading; the caller keeps its last good one.

    `reason` is one of the REASON_* constants (a condition reason), `message` the detail for
    humans. Messages never contain credentials: adapters never see them, and the fetch layer
    redacts every secret value before raising.
    """

    def __init__(self, reason: str, message: str, *, provider: str = "") -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.provider = provider


@dataclass(frozen=True, slots=True)
class SignalMethod:
    """How an intensity was computed; two readings are comparable only when these are equal."""

    signal_type: SignalType
    emission_factor_type: EmissionFactorType

    def __str__(self) -> str:
        return f"{self.signal_type.value}/{self.emission_factor_type.value}"


@dataclass(frozen=True, kw_only=True, slots=True)
class CarbonReading:
    """One carbon-intensity value of one zone.

    `carbon_intensity` is in gCO2e/kWh (converted by the adapter when the provider uses other
    units). `data_time` is the time the value is for (start of its period), `updated_at` when
    the provider last computed it (when it says), `read_at` the caller's clock at parsing.
    """

    carbon_intensity: float
    signal_type: SignalType
    emission_factor_type: EmissionFactorType
    data_time: datetime
    read_at: datetime
    estimated: bool
    zone: str
    provider: CarbonSignalProvider
    updated_at: datetime | None = None

    @property
    def method(self) -> SignalMethod:
        return SignalMethod(self.signal_type, self.emission_factor_type)

    def age(self, now: datetime) -> timedelta:
        """How old the value is at `now` (never negative: a clock a little behind the
        provider's does not make a value younger than new)."""
        return max(timedelta(0), now - self.data_time)

    def to_status(self, *, renewable_share: float, updated_at: datetime) -> EnergyStatus:
        """status.energy for this reading. Feeds give intensity only, so the renewable share
        is the caller's (the declared one of the spec or its schedule)."""
        return EnergyStatus(
            carbon_intensity=round(self.carbon_intensity, 3),
            renewable_share=renewable_share,
            updated_at=updated_at,
            source=SOURCE_SIGNAL,
            provider=self.provider.value,
            zone=self.zone,
            signal_type=self.signal_type,
            emission_factor_type=self.emission_factor_type,
            estimated=self.estimated,
            data_time=self.data_time,
        )


# --------------------------------------------------------------------------------------------
# Parsing helpers shared by the adapters (all raise CarbonSignalError(Malformed))


def malformed(provider: CarbonSignalProvider, message: str) -> CarbonSignalError:
    return CarbonSignalError(REASON_MALFORMED, message, provider=provider.value)


def load_json(body: bytes | str, provider: CarbonSignalProvider) -> Any:
    """The decoded JSON document, or Malformed naming the provider."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise malformed(provider, f"{provider.value} did not answer with JSON") from None


def field(doc: Any, name: str, provider: CarbonSignalProvider) -> Any:
    """`doc[name]` from a JSON object, or Malformed saying which field is missing."""
    if not isinstance(doc, dict):
        raise malformed(provider, f"expected a JSON object around {name!r}")
    if name not in doc:
        raise malformed(provider, f"field {name!r} is missing")
    return doc[name]


def intensity(value: Any, what: str, provider: CarbonSignalProvider) -> float:
    """A finite number >= 0 (JSON true/false are not numbers), else Malformed."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(provider, f"{what} must be a number, got {json.dumps(value)[:40]}")
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise malformed(provider, f"{what} must be a finite number >= 0, got {out}")
    return out


def timestamp(value: Any, what: str, provider: CarbonSignalProvider) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (no offset means UTC), else Malformed."""
    if not isinstance(value, str):
        raise malformed(provider, f"{what} must be an ISO 8601 time, got {json.dumps(value)[:40]}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise malformed(provider, f"{what} is not an ISO 8601 time: {value[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def check_now(now: datetime) -> datetime:
    """`now` as UTC; a naive datetime is a caller bug (whose clock is it?)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    return now.astimezone(UTC)


def check_fresh(reading: CarbonReading, now: datetime, max_age: timedelta | None) -> CarbonReading:
    """The reading, or Stale when it is older than `max_age` at `now` (None: no limit)."""
    if max_age is not None and reading.age(now) > max_age:
        raise CarbonSignalError(
            REASON_STALE,
            f"{reading.provider.value} value for {reading.zone} is from "
            f"{reading.data_time.isoformat()}, {_duration(reading.age(now))} old "
            f"(limit {_duration(max_age)})",
            provider=reading.provider.value,
        )
    return reading


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s"


__all__ = [
    "G_PER_KWH_PER_LB_PER_MWH",
    "REASON_MALFORMED",
    "REASON_METHOD_MISMATCH",
    "REASON_MISSING_CREDENTIALS",
    "REASON_NO_DATA",
    "REASON_PROVIDER_ERROR",
    "REASON_RATE_LIMITED",
    "REASON_STALE",
    "REASON_UNAUTHORIZED",
    "REASON_UNIT_MISMATCH",
    "REASON_UNREACHABLE",
    "REASON_ZONE_MISMATCH",
    "REASON_ZONE_NOT_FOUND",
    "SOURCE_SIGNAL",
    "CarbonReading",
    "CarbonSignalError",
    "SignalMethod",
    "check_fresh",
    "check_now",
]
