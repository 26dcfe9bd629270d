"""A carbon-intensity time series in CSV: one time column, then one column per zone.

The shape of the Electricity Maps hourly exports used by Sukprasert et al. (EuroSys 2024) and
shipped in the project's shared data:

    datetime_utc,CA-QC,CA-ON,FR,...
    2022-01-01T00:00:00Z,27.44,59.79,50.51,...

Values are gCO2e/kWh. The first column is the time (ISO 8601; no offset means UTC) whatever
its name; the row for now is the last one at or before now with a value for the zone (an empty
cell is "no value", not zero). Such exports are average intensities; whether their factors are
lifecycle or direct is not in the file, so the module's spec says (lifecycle by default, as in
the `ci_lca_*` files). With replay = Year, the series' year is replayed onto the current year
(same month, day and hour; 29 February reads 28 February), so a 2022 series drives a demo today.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from aifactory.api.carbon_signal import (
    CarbonSignalProvider,
    CsvReplay,
    EmissionFactorType,
    SignalType,
)
from aifactory.signals.carbon.reading import (
    REASON_NO_DATA,
    REASON_ZONE_NOT_FOUND,
    CarbonReading,
    CarbonSignalError,
    check_fresh,
    check_now,
    malformed,
    timestamp,
)

PROVIDER = CarbonSignalProvider.CSV


def parse(
    text: str,
    *,
    zone: str,
    now: datetime,
    replay: CsvReplay = CsvReplay.NONE,
    emission_factor_type: EmissionFactorType = EmissionFactorType.LIFECYCLE,
    max_age: timedelta | None = None,
) -> CarbonReading:
    """The reading of `zone` for `now` (see the module docstring).

    Raises CarbonSignalError: Malformed (no header, a bad time or number, with its line),
    ZoneNotFound (no such column), NoData (no value at or before now), Stale (the last value
    is older than `max_age`: the series has ended).
    """
    now = check_now(now)
    series = _column(text, zone)
    if not series:
        raise CarbonSignalError(
            REASON_NO_DATA, f"column {zone} has no values", provider=PROVIDER.value
        )
    times = [t for t, _ in series]
    if replay is CsvReplay.YEAR:
        year = times[0].year
        target = _in_year(now, year)
        i = bisect.bisect_right(times, target) - 1
        if i < 0:  # before the series' first row: wrap to its end, a year earlier
            t, value = series[-1]
            data_time = _in_year(t, now.year - 1)
        else:
            t, value = series[i]
            data_time = _in_year(t, now.year)
    else:
        i = bisect.bisect_right(times, now) - 1
        if i < 0:
            raise CarbonSignalError(
                REASON_NO_DATA,
                f"column {zone} starts at {times[0].isoformat()}, after {now.isoformat()}",
                provider=PROVIDER.value,
            )
        data_time, value = series[i]
    reading = CarbonReading(
        carbon_intensity=value,
        signal_type=SignalType.AVERAGE,
        emission_factor_type=emission_factor_type,
        data_time=data_time,
        read_at=now,
        estimated=False,
        zone=zone,
        provider=PROVIDER,
    )
    return check_fresh(reading, now, max_age)


def _column(text: str, zone: str) -> list[tuple[datetime, float]]:
    """(time, value) of one column, sorted by time, without empty cells."""
    return columns(text, [zone])[zone]


def columns(
    text: str, zones: Iterable[str] | None = None
) -> dict[str, list[tuple[datetime, float]]]:
    """(time, value) per zone column, sorted by time, without empty cells; every zone when
    `zones` is None. One pass over the text, the same checks as `parse`: raises
    CarbonSignalError Malformed (bad header, time or number, with its line) or ZoneNotFound.

    Values are gCO2e/kWh as in the file; used by the simulator to read a year of hourly rows
    for many zones at once.
    """
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise malformed(PROVIDER, "the series is empty: no header row")
    rows = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    header = [c.strip() for c in next(rows)]
    wanted = list(header[1:]) if zones is None else list(dict.fromkeys(zones))
    for zone in wanted:
        if zone not in header[1:]:
            raise CarbonSignalError(
                REASON_ZONE_NOT_FOUND,
                f"no column {zone} among the series' {len(header) - 1} zones",
                provider=PROVIDER.value,
            )
    cols = {zone: header.index(zone, 1) for zone in wanted}
    out: dict[str, list[tuple[datetime, float]]] = {zone: [] for zone in wanted}
    for (line, _), row in zip(lines[1:], rows, strict=False):
        if len(row) != len(header):
            raise malformed(PROVIDER, f"line {line}: expected {len(header)} cells, got {len(row)}")
        t: datetime | None = None
        for zone, col in cols.items():
            cell = row[col].strip()
            if not cell:
                continue
            if t is None:
                t = timestamp(row[0].strip(), f"line {line}: time", PROVIDER)
            try:
                value = float(cell)
            except ValueError:
                raise malformed(
                    PROVIDER, f"line {line}: {zone} {cell[:20]!r} is not a number"
                ) from None
            if not math.isfinite(value) or value < 0:
                raise malformed(PROVIDER, f"line {line}: {zone} must be a finite number >= 0")
            out[zone].append((t, value))
    for series in out.values():
        series.sort(key=lambda tv: tv[0])
    return out


def _in_year(t: datetime, year: int) -> datetime:
    """The same month, day and time in another year; 29 February becomes 28 February."""
    try:
        return t.replace(year=year)
    except ValueError:
        return t.replace(year=year, day=28)


__all__ = ["PROVIDER", "columns", "parse"]
