"""Carbon intensity per module over a simulated period: what the grid emitted, what placement saw.

Input: CSV time series of the Electricity Maps hourly export shape (`datetime_utc,ZONE,...`,
gCO2e/kWh; `.csv` or `.csv.gz`), read with the operator's own CSV adapter
(`aifactory.signals.carbon.csv_series.columns`, same checks and messages). Which column a
module reads is its grid zone, in this order:

1. a mapping file (`module,zone` rows; `aifactoryctl simulate --zones FILE.csv`);
2. the module's label or annotation `aifactory.dev/grid-zone`;
3. the zone of its live feed, `spec.energy.signal.zone`.

A module without a zone, or whose zone no series covers, keeps its declared
`spec.energy.carbonIntensity` for the whole period (a warning says so).

Two figures per module come out, both gCO2e/kWh:

* **true**: the series value at each simulated instant (the last row at or before it, as the
  adapter reads it), or the declared value when there is no row yet or the last one is older
  than `energy_signal_max_age` (the operator's stale fallback). Emissions are accounted with it.
* **effective**: what placement uses, after the operator's smoothing (`signals.smoothing.smooth`
  with `signal_tolerance_seconds` / `signal_tolerance_readings`), the readings taken every
  `energy_poll_interval` as the operator polls. A step uses the value effective at its last
  poll: with the defaults (polls every 300 s, 60 s and 2 readings) a new hourly value takes
  effect 5 minutes into its hour, and the simulator, which decides once per step, applies it to
  the whole step.

Renewable share is not in these series: it stays the declared share of `spec.energy.sources`.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from aifactory.api import AIFactoryModule
from aifactory.signals.carbon import CarbonSignalError
from aifactory.signals.carbon.csv_series import columns
from aifactory.signals.smoothing import Smoothed, smooth

#: Label or annotation naming a module's Electricity Maps zone for the simulator.
ZONE_KEY = "aifactory.dev/grid-zone"

FloatArray = np.ndarray


class SeriesError(ValueError):
    """A carbon series or zone mapping cannot be used; the message names the file and line."""


def read_text(path: str | Path) -> str:
    """A text file, gunzipped when its name ends in .gz."""
    p = Path(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rt", encoding="utf-8") as f:
                return f.read()
        return p.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SeriesError(f"{path}: cannot read: {exc}") from None


@dataclass(frozen=True)
class CarbonSeries:
    """Carbon intensity per zone: sorted UTC epoch seconds and gCO2e/kWh, empty cells left out.

    `sources` names the files, for the report.
    """

    zones: Mapping[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def covers(self, zone: str) -> bool:
        return zone in self.zones and len(self.zones[zone][0]) > 0

    def at(self, zone: str, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(value, data time) at each of `times` (epoch seconds): the last row at or before it;
        NaN for both where the series has no row yet."""
        t, v = self.zones[zone]
        i = np.searchsorted(t, times, side="right") - 1
        ok = i >= 0
        idx = np.where(ok, i, 0)
        value = np.where(ok, v[idx], np.nan)
        when = np.where(ok, t[idx], np.nan)
        return value, when


def load_carbon(paths: Sequence[str | Path], zones: Iterable[str] | None = None) -> CarbonSeries:
    """Read CSV series (later files win for a zone they share); only `zones` when given.

    Raises SeriesError with the adapter's message (file, line, zone) on a malformed file.
    """
    found: dict[str, tuple[FloatArray, FloatArray]] = {}
    wanted = None if zones is None else set(zones)
    for path in paths:
        text = read_text(path)
        header = next(csv.reader(io.StringIO(_first_data_line(text))), [])
        names = [c.strip() for c in header[1:]]
        pick = names if wanted is None else [z for z in names if z in wanted]
        if not pick:
            continue
        try:
            cols = columns(text, pick)
        except CarbonSignalError as exc:
            raise SeriesError(f"{path}: {exc.message}") from None
        for zone, rows in cols.items():
            t = np.array([r[0].timestamp() for r in rows], np.float64)
            v = np.array([r[1] for r in rows], np.float64)
            found[zone] = (t, v)
    return CarbonSeries(found, tuple(str(p) for p in paths))


def _first_data_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def read_zone_map(path: str | Path) -> dict[str, str]:
    """module -> zone from a `module,zone` CSV (a header row `module,zone` is optional)."""
    out: dict[str, str] = {}
    problems: list[str] = []
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path))), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if n == 1 and [c.lower() for c in cells[:2]] == ["module", "zone"]:
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            problems.append(f"line {n}: expected module,zone")
            continue
        if cells[0] in out:
            problems.append(f"line {n}: module {cells[0]} given twice")
            continue
        out[cells[0]] = cells[1]
    if problems:
        raise SeriesError(f"{path}: " + "; ".join(problems))
    return out


def zone_of(module: AIFactoryModule, mapping: Mapping[str, str] | None = None) -> str | None:
    """The grid zone whose column drives this module (see the module docstring for the order)."""
    if mapping and module.name in mapping:
        return mapping[module.name]
    meta = module.metadata
    for source in (meta.labels, meta.annotations):
        if source.get(ZONE_KEY):
            return source[ZONE_KEY]
    signal = module.spec.energy.signal
    return signal.zone if signal is not None else None


@dataclass(frozen=True)
class EnergyTimeline:
    """Carbon intensity of every module over the period, gCO2e/kWh.

    `true[s, k, m]`: module m during slot k of step s (accounting); `effective[s, m]`: what
    placement uses in step s (smoothed); `renewable[m]`: the declared renewable share (0..1).
    `zones[m]` is the zone read (None: the declared value throughout). Modules are in the order
    of `modules`.
    """

    modules: tuple[str, ...]
    zones: tuple[str | None, ...]
    true: FloatArray
    effective: FloatArray
    renewable: FloatArray
    declared: FloatArray
    warnings: tuple[str, ...] = ()

    def mean_true(self) -> dict[str, float]:
        """Mean intensity per module over the period (gCO2e/kWh)."""
        return {m: float(self.true[:, :, i].mean()) for i, m in enumerate(self.modules)}


def energy_timeline(
    modules: Sequence[AIFactoryModule],
    series: CarbonSeries,
    step_times: FloatArray,
    *,
    step_s: float,
    slots: int,
    poll_s: float,
    tolerance_s: float,
    min_readings: int,
    max_age_s: float,
    zone_map: Mapping[str, str] | None = None,
) -> EnergyTimeline:
    """True and effective carbon intensity of every module at every step (see the class).

    `step_times` are the steps' start times (epoch seconds, UTC), `slots` the rebalance slots
    per step. Pure and deterministic.
    """
    n_steps = len(step_times)
    slot_s = step_s / slots
    slot_times = (step_times[:, None] + np.arange(slots)[None, :] * slot_s).ravel()
    polls_per_step = max(1, math.ceil(step_s / poll_s))
    poll_times = (step_times[:, None] + np.arange(polls_per_step)[None, :] * poll_s).ravel()
    names = tuple(m.name for m in modules)
    zones: list[str | None] = []
    warnings: list[str] = []
    true = np.zeros((n_steps, slots, len(modules)))
    effective = np.zeros((n_steps, len(modules)))
    declared = np.array([m.spec.energy.carbon_intensity for m in modules], np.float64)
    renewable = np.array([m.renewable_share() for m in modules], np.float64)
    for i, module in enumerate(modules):
        zone = zone_of(module, zone_map)
        spec = float(declared[i])
        if zone is None or not series.covers(zone):
            why = "no grid zone" if zone is None else f"zone {zone} is in no carbon series"
            warnings.append(
                f"module {module.name}: {why}; its declared {spec:g} gCO2e/kWh is used throughout"
            )
            zones.append(None)
            true[:, :, i] = spec
            effective[:, i] = spec
            continue
        zones.append(zone)
        value, when = series.at(zone, slot_times)
        fresh = np.isfinite(value) & (slot_times - when <= max_age_s)
        true[:, :, i] = np.where(fresh, value, spec).reshape(n_steps, slots)
        stale = int((~fresh).sum())
        if stale:
            warnings.append(
                f"module {module.name}: zone {zone} has no fresh value for {stale} of "
                f"{len(slot_times)} slots; the declared {spec:g} gCO2e/kWh is used there"
            )
        readings, seen = series.at(zone, poll_times)
        readings = np.where(
            np.isfinite(readings) & (poll_times - seen <= max_age_s), readings, spec
        )
        effective[:, i] = _smoothed(
            readings.reshape(n_steps, polls_per_step),
            poll_times.reshape(n_steps, polls_per_step),
            tolerance_s=tolerance_s,
            min_readings=min_readings,
        )
    return EnergyTimeline(
        modules=names,
        zones=tuple(zones),
        true=true,
        effective=effective,
        renewable=renewable,
        declared=declared,
        warnings=tuple(warnings),
    )


def _smoothed(
    readings: FloatArray, times: FloatArray, *, tolerance_s: float, min_readings: int
) -> FloatArray:
    """Per step, the effective value at its last poll after feeding every poll's reading to
    `smooth` (readings equal to the effective one with nothing pending are no-ops, skipped)."""
    out = np.zeros(readings.shape[0])
    state: Smoothed | None = None
    last = math.nan
    for s in range(readings.shape[0]):
        for k in range(readings.shape[1]):
            r = float(readings[s, k])
            if state is not None and state.pending is None and r == last:
                continue
            now = datetime.fromtimestamp(float(times[s, k]), UTC)
            state = smooth(state, r, now, tolerance_s=tolerance_s, min_readings=min_readings)
            last = r
        assert state is not None
        out[s] = state.effective
    return out


__all__ = [
    "ZONE_KEY",
    "CarbonSeries",
    "EnergyTimeline",
    "SeriesError",
    "energy_timeline",
    "load_carbon",
    "read_text",
    "read_zone_map",
    "zone_of",
]
