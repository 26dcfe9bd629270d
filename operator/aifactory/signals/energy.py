"""Energy over time: a module's carbon intensity and renewable share for the current hour.

Four writers can own `status.energy`: the operator mirroring `spec.energy` (source "spec"),
the operator applying `spec.energy.schedule` (source "schedule"), the operator applying a
reading of `spec.energy.signal` (source "signal", see `aifactory.signals.carbon`), and an
external feed that patches the status subresource under its own name. The operator never
overwrites an external feed, so a feed going quiet leaves its last reading in place rather than
flapping back to the spec.
Everything here is pure: the controller passes the clock in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aifactory.api.module import AIFactoryModule, EnergyScheduleEntry, EnergyStatus

#: status.energy.source values the operator itself writes; anything else is an external feed.
SOURCE_SPEC = "spec"
SOURCE_SCHEDULE = "schedule"
#: A reading of the module's own spec.energy.signal, polled by the operator.
SOURCE_SIGNAL = "signal"
OPERATOR_SOURCES: frozenset[str] = frozenset({SOURCE_SPEC, SOURCE_SCHEDULE, SOURCE_SIGNAL})


@dataclass(frozen=True, kw_only=True)
class EnergyReading:
    """Carbon intensity (gCO2e/kWh) and renewable share (0..1) valid now, and who said so."""

    carbon_intensity: float
    renewable_share: float
    source: str = SOURCE_SCHEDULE

    def to_status(self, updated_at: datetime) -> EnergyStatus:
        """The status.energy the operator writes for this reading."""
        return EnergyStatus(
            carbon_intensity=self.carbon_intensity,
            renewable_share=self.renewable_share,
            updated_at=updated_at,
            source=self.source,
        )


def local_hour(module: AIFactoryModule, now: datetime) -> int:
    """Hour of day (0..23) at the module: `now` in UTC shifted by spec.energy.utcOffsetHours.

    `now` must be timezone-aware; a naive datetime is a caller bug (whose clock is it?).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    offset = timedelta(hours=module.spec.energy.utc_offset_hours)
    return (now.astimezone(UTC) + offset).hour


def schedule_entry(module: AIFactoryModule, now: datetime) -> EnergyScheduleEntry | None:
    """The schedule entry covering the module's local hour, or None."""
    schedule = module.spec.energy.schedule
    if not schedule:
        return None
    hour = local_hour(module, now)
    return next((e for e in schedule if e.covers(hour)), None)


def scheduled_energy(module: AIFactoryModule, now: datetime) -> EnergyReading | None:
    """The schedule's reading for the module's local hour at `now`.

    None when the module has no schedule or no entry covers the hour; spec.energy's
    carbonIntensity and its sources' renewable share apply then (see `declared_energy`).
    """
    entry = schedule_entry(module, now)
    if entry is None:
        return None
    return EnergyReading(
        carbon_intensity=entry.carbon_intensity,
        renewable_share=entry.renewable_share,
        source=SOURCE_SCHEDULE,
    )


def declared_energy(module: AIFactoryModule, now: datetime) -> EnergyReading:
    """What the spec says holds now: the schedule's reading, else the static spec values."""
    scheduled = scheduled_energy(module, now)
    if scheduled is not None:
        return scheduled
    return EnergyReading(
        carbon_intensity=module.spec.energy.carbon_intensity,
        renewable_share=round(module.renewable_share(), 4),
        source=SOURCE_SPEC,
    )


def operator_owns_energy(status: EnergyStatus | None) -> bool:
    """True when the operator may write status.energy: unset, or last written by itself.

    An external feed claims the field by writing its own `source`; giving it back means
    patching source to "spec" (or removing status.energy).
    """
    return status is None or status.source is None or status.source in OPERATOR_SOURCES


__all__ = [
    "OPERATOR_SOURCES",
    "SOURCE_SCHEDULE",
    "SOURCE_SIGNAL",
    "SOURCE_SPEC",
    "EnergyReading",
    "declared_energy",
    "local_hour",
    "operator_owns_energy",
    "schedule_entry",
    "scheduled_energy",
]
