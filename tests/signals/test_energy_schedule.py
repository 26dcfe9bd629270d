"""scheduled_energy: the reading for the module's local hour, boundaries and offsets included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from aifactory.api.module import (
    SCHEDULE_HOURS_MESSAGE,
    SCHEDULE_OVERLAP_MESSAGE,
    AIFactoryModule,
    EnergyStatus,
)
from aifactory.signals.energy import (
    SOURCE_SCHEDULE,
    SOURCE_SPEC,
    EnergyReading,
    declared_energy,
    local_hour,
    operator_owns_energy,
    scheduled_energy,
)

#: A solar module: clean from 08 to 18 local time, grid-heavy at night (two entries, as
#: windows do not wrap midnight). 06-08 is deliberately uncovered: spec values apply.
SOLAR = [
    {"fromHour": 8, "toHour": 18, "carbonIntensity": 40, "renewableShare": 0.9},
    {"fromHour": 18, "toHour": 24, "carbonIntensity": 420, "renewableShare": 0.1},
    {"fromHour": 0, "toHour": 6, "carbonIntensity": 450, "renewableShare": 0.05},
]
DAY = EnergyReading(carbon_intensity=40, renewable_share=0.9)
EVENING = EnergyReading(carbon_intensity=420, renewable_share=0.1)
NIGHT = EnergyReading(carbon_intensity=450, renewable_share=0.05)


def module(
    schedule: list[dict[str, Any]] | None = None, offset: float | None = None
) -> AIFactoryModule:
    energy: dict[str, Any] = {
        "sources": [{"type": "solar", "share": 0.6}, {"type": "grid", "share": 0.4}],
        "carbonIntensity": 250,
        "powerBudgetKW": 100,
    }
    if schedule is not None:
        energy["schedule"] = schedule
    if offset is not None:
        energy["utcOffsetHours"] = offset
    return AIFactoryModule.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "AIFactoryModule",
            "metadata": {"name": "solar-1"},
            "spec": {
                "location": {"country": "DE", "latitude": 50.1, "longitude": 8.7},
                "energy": energy,
                "capacity": {"gpus": []},
                "cluster": {"nodeSelector": {"aifactory.dev/module": "solar-1"}},
            },
        }
    )


def utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, 21, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "offset", "expected"),
    [
        # UTC module: day, evening, night, and the uncovered dawn
        (utc(12), 0, DAY),
        (utc(20), 0, EVENING),
        (utc(3), 0, NIGHT),
        (utc(7), 0, None),
        # window boundaries: fromHour inclusive, toHour exclusive
        (utc(8, 0), 0, DAY),
        (utc(7, 59), 0, None),
        (utc(17, 59), 0, DAY),
        (utc(18, 0), 0, EVENING),
        (utc(23, 59), 0, EVENING),
        (utc(0, 0), 0, NIGHT),
        (utc(5, 59), 0, NIGHT),
        (utc(6, 0), 0, None),
        # offsets move the local hour: 06 UTC is 08 in UTC+2 (day), 20 UTC is 06 in UTC+10
        (utc(6), 2, DAY),
        (utc(5, 59), 2, None),
        (utc(20), 10, None),
        (utc(22), 10, DAY),
        # negative offsets cross midnight backwards: 02 UTC is 21 the day before in UTC-5
        (utc(2), -5, EVENING),
        (utc(13), -5, DAY),
        # fractional offsets (India +5:30, Nepal +5:45)
        (utc(2, 29), 5.5, None),
        (utc(2, 30), 5.5, DAY),
        (utc(12, 14), 5.75, DAY),
        (utc(12, 15), 5.75, EVENING),
        # the extremes of the allowed range
        (utc(10), 14, NIGHT),
        (utc(11), -12, EVENING),
        (utc(13), -12, NIGHT),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else repr(v),
)
def test_scheduled_energy(now: datetime, offset: float, expected: EnergyReading | None) -> None:
    assert scheduled_energy(module(SOLAR, offset), now) == expected


def test_now_in_another_timezone_is_converted() -> None:
    # 14:00 at UTC+4 is 10:00 UTC: day for a UTC module, whatever zone the caller's clock uses
    now = datetime(2025, 6, 21, 14, tzinfo=timezone(timedelta(hours=4)))
    assert local_hour(module(SOLAR), now) == 10
    assert scheduled_energy(module(SOLAR), now) == DAY


def test_naive_now_is_a_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_energy(module(SOLAR), datetime(2025, 6, 21, 12))


@pytest.mark.parametrize("schedule", [None, []])
def test_no_schedule_means_spec_values(schedule: list[dict[str, Any]] | None) -> None:
    m = module(schedule)
    assert scheduled_energy(m, utc(12)) is None
    assert declared_energy(m, utc(12)) == EnergyReading(
        carbon_intensity=250, renewable_share=0.6, source=SOURCE_SPEC
    )


def test_declared_energy_prefers_the_schedule() -> None:
    assert declared_energy(module(SOLAR), utc(12)) == DAY
    assert declared_energy(module(SOLAR), utc(12)).source == SOURCE_SCHEDULE
    assert declared_energy(module(SOLAR), utc(7)).source == SOURCE_SPEC


def test_reading_to_status() -> None:
    status = DAY.to_status(utc(12))
    assert status == EnergyStatus(
        carbon_intensity=40, renewable_share=0.9, updated_at=utc(12), source="schedule"
    )
    assert status.model_dump(by_alias=True, mode="json", exclude_none=True) == {
        "carbonIntensity": 40.0,
        "renewableShare": 0.9,
        "updatedAt": "2025-06-21T12:00:00Z",
        "source": "schedule",
    }


@pytest.mark.parametrize(
    ("source", "owned"),
    [(None, True), ("spec", True), ("schedule", True), ("electricitymaps", False), ("", False)],
)
def test_operator_owns_energy(source: str | None, owned: bool) -> None:
    assert operator_owns_energy(EnergyStatus(carbon_intensity=1, source=source)) is owned


def test_operator_owns_missing_energy() -> None:
    assert operator_owns_energy(None)


def test_full_day_single_entry() -> None:
    m = module([{"fromHour": 0, "toHour": 24, "carbonIntensity": 10, "renewableShare": 1}])
    readings = {scheduled_energy(m, utc(0) + timedelta(hours=h)) for h in range(24)}
    assert readings == {EnergyReading(carbon_intensity=10, renewable_share=1)}


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([{**SOLAR[0], "fromHour": 18, "toHour": 8}], SCHEDULE_HOURS_MESSAGE),
        ([{**SOLAR[0], "fromHour": 8, "toHour": 8}], SCHEDULE_HOURS_MESSAGE),
        ([SOLAR[0], {**SOLAR[1], "fromHour": 17}], SCHEDULE_OVERLAP_MESSAGE),
        ([SOLAR[0], SOLAR[0]], SCHEDULE_OVERLAP_MESSAGE),
        # overlap hidden behind a non-adjacent entry once sorted
        (
            [
                {**SOLAR[0], "fromHour": 0, "toHour": 10},
                {**SOLAR[0], "fromHour": 2, "toHour": 3},
                {**SOLAR[0], "fromHour": 5, "toHour": 8},
            ],
            SCHEDULE_OVERLAP_MESSAGE,
        ),
    ],
)
def test_invalid_schedules_are_refused(schedule: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        module(schedule)


def test_touching_windows_are_fine() -> None:
    m = module(SOLAR)
    assert [(e.from_hour, e.to_hour) for e in m.spec.energy.schedule] == [(8, 18), (18, 24), (0, 6)]
