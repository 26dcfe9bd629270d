"""Demand per region over a simulated period: generated, or read from a CSV. Pure, seeded.

Generated demand (the default) for region r of deployment d at step s, in requests/s:

    rps = R_d * w_r * D(local hour of r at s) * B_r(s)

* `R_d`: the deployment's declared total, the sum of `spec.demand.regions[].requestsPerSecond`,
  taken as its daily mean;
* `w_r`: the region's share of that total, in proportion to its population (`weights =
  "population"`, the default) or to its declared requestsPerSecond (`weights = "spec"`). A
  region's population is given (`populations`), else the sum of the populations of the GeoNames
  cities of 500,000 or more (package data `geonames_cities_pop500k.csv`, CC BY 4.0) within
  `radius_km` of its coordinates in its country, else the nearest such city in its country, else
  the nearest anywhere; its time zone is that of the nearest of those cities (IANA, DST through
  `zoneinfo`).
* `D`: the diurnal curve, `1 + amplitude * cos(2 pi (h - peak_hour) / 24)` in local time, mean 1.
  **An assumption, not a measurement** (no public multi-day inference trace is shipped); the
  defaults (amplitude 0.5, peak 15:00) make the night trough a third of the afternoon peak.
  Replace it with `--demand FILE.csv` where real series exist.
* `B`: burstiness from the Azure LLM inference trace (conversation, 2023-11-16, CC BY 4.0): the
  requests of its 58 full minutes divided by their mean. For every step and region a starting
  minute is drawn (seeded per deployment and region); the step *serves* the mean of the
  following minutes (as many as the step has), and placement *sizes for* the highest minute of
  the step and of the `window_s` before it: the operator's demand stabilisation scales up at
  once and down only after the window, so at the step's peak it held that many replicas, and
  the simulator, which decides once per step, holds them for the whole step.

Demand from a CSV (`time,region,requestsPerSecond[,deployment]`): each row holds from its time
until the next row of the same region (and deployment, when the column is there; a row without
one applies to every deployment with a region of that name). A region the file never names keeps
its declared value, as with live demand; served and sized demand are the same. Demand spikes
(events) multiply both. Replicas follow with the operator's sizing rule (`wanted`).
"""

from __future__ import annotations

import csv
import io
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from aifactory.api import InferenceDeployment
from aifactory.placement.geo import haversine_km
from aifactory.placement.model import PlacementSettings, split_replicas
from aifactory.simulation.series import read_text

FloatArray = np.ndarray
IntArray = np.ndarray

#: The sizing rule's tolerance (api.deployment): 3.0000000001 replicas are 3, not 4.
_CEIL_EPSILON = 1e-9


class DemandError(ValueError):
    """Demand input that cannot be used; the message names the file and line."""


# ------------------------------------------------------------------------------ data files
@dataclass(frozen=True, slots=True)
class City:
    """A GeoNames city: population (people) and IANA time zone."""

    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    timezone: str


def _data(name: str) -> str:
    return resources.files("aifactory.simulation").joinpath("data", name).read_text("utf-8")


def load_cities(path: str | Path | None = None) -> tuple[City, ...]:
    """GeoNames cities (the package's copy by default): name, ISO2, lat, lon, population, tz."""
    text = read_text(path) if path is not None else _data("geonames_cities_pop500k.csv")
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        out.append(
            City(
                row["name"],
                row["countrycode"],
                float(row["latitude"]),
                float(row["longitude"]),
                int(row["population"]),
                row["timezone"],
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class Burst:
    """Minute-to-minute demand multipliers (mean 1) and where they come from."""

    multipliers: FloatArray
    source: str

    @classmethod
    def from_csv(cls, path: str | Path | None = None) -> Burst:
        """Requests per minute (`minute,requests` rows); the first and last minutes are left
        out as partial (a trace window does not start on a minute)."""
        text = read_text(path) if path is not None else _data(TRACE_FILE)
        counts = [
            float(row[1])
            for row in csv.reader(
                line for line in io.StringIO(text) if line.strip() and not line.startswith("#")
            )
            if row and row[0] != "minute_utc"
        ]
        full = np.array(counts[1:-1], np.float64)
        if len(full) < 2 or full.mean() <= 0:
            raise DemandError(f"{path or TRACE_FILE}: needs at least 4 minutes of requests")
        return cls(full / full.mean(), str(path) if path else TRACE_SOURCE)

    @classmethod
    def none(cls) -> Burst:
        """No burstiness (every minute is the mean)."""
        return cls(np.ones(1), "none")


TRACE_FILE = "azure_llm_conv_2023_requests_per_minute.csv"
TRACE_SOURCE = (
    "Azure LLM inference trace, conversation, 2023-11-16 (Azure/AzurePublicDataset, CC BY 4.0)"
)


@dataclass(frozen=True, slots=True)
class Diurnal:
    """`1 + amplitude * cos(2 pi (h - peak_hour) / 24)` at local hour h: mean 1 over a day.

    An assumption (see the module docstring), with amplitude in 0..1.
    """

    amplitude: float = 0.5
    peak_hour: float = 15.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.amplitude <= 1.0:
            raise DemandError(f"diurnal amplitude must be within 0..1, got {self.amplitude}")

    def factor(self, local_hours: FloatArray) -> FloatArray:
        out: FloatArray = 1.0 + self.amplitude * np.cos(
            2.0 * np.pi * (np.asarray(local_hours) - self.peak_hour) / 24.0
        )
        return out


# ------------------------------------------------------------------------------ regions
@dataclass(frozen=True, slots=True)
class RegionProfile:
    """A demand region's population (people), time zone, and how both were found."""

    name: str
    country: str | None
    latitude: float
    longitude: float
    population: float
    timezone: str
    source: str


def region_profile(
    name: str,
    country: str | None,
    latitude: float,
    longitude: float,
    cities: Sequence[City],
    *,
    radius_km: float = 300.0,
    population: float | None = None,
) -> RegionProfile:
    """Population and time zone of one region (rules in the module docstring)."""
    if not cities:
        raise DemandError("no cities to take populations and time zones from")
    earth = PlacementSettings().earth_radius_km
    dist = [haversine_km(latitude, longitude, c.latitude, c.longitude, earth) for c in cities]
    order = sorted(range(len(cities)), key=lambda i: dist[i])
    local = [i for i in order if country is None or cities[i].country == country]
    near = [i for i in local if dist[i] <= radius_km]
    anchor = cities[(near or local or order)[0]]
    if population is not None:
        return RegionProfile(
            name, country, latitude, longitude, population, anchor.timezone, "given"
        )
    if near:
        pop = float(sum(cities[i].population for i in near))
        names = ", ".join(cities[i].name for i in near[:4]) + (", ..." if len(near) > 4 else "")
        cities_ = "city" if len(near) == 1 else "cities"
        source = f"GeoNames: {len(near)} {cities_} within {radius_km:g} km ({names})"
    else:
        pick = cities[(local or order)[0]]
        pop = float(pick.population)
        source = f"GeoNames: nearest city {pick.name} ({pick.country})"
    return RegionProfile(name, country, latitude, longitude, pop, anchor.timezone, source)


def local_hours(times: FloatArray, timezone: str) -> FloatArray:
    """Local clock hour (0..24, fractional) of each epoch second in an IANA time zone."""
    tz = ZoneInfo(timezone)
    out = np.empty(len(times))
    cache: dict[int, float] = {}
    for i, t in enumerate(np.asarray(times, np.float64)):
        hour_key = int(t // 3600)
        offset = cache.get(hour_key)
        if offset is None:
            off = datetime.fromtimestamp(hour_key * 3600, UTC).astimezone(tz).utcoffset()
            offset = cache[hour_key] = off.total_seconds() if off else 0.0
        out[i] = ((t + offset) / 3600.0) % 24.0
    return out


# ------------------------------------------------------------------------------ series
@dataclass(frozen=True)
class DemandSeries:
    """Requests/s per deployment ("namespace/name") and region, at every step.

    `served[ref][s, r]`: the mean rate step s serves (SLO share, utilisation); `sized[ref][s, r]`
    what placement sizes replicas for (the stabilised peak); regions in `regions[ref]` order.
    Deployments without demand regions are absent.
    """

    regions: Mapping[str, tuple[str, ...]]
    served: Mapping[str, FloatArray]
    sized: Mapping[str, FloatArray]
    profiles: Mapping[str, tuple[RegionProfile, ...]] = field(default_factory=dict)
    source: str = "generated"
    warnings: tuple[str, ...] = ()

    def scaled(self, ref: str, region: str, steps: IntArray, factor: float) -> DemandSeries:
        """A copy with one region's demand multiplied by `factor` at the given steps."""
        served = dict(self.served)
        sized = dict(self.sized)
        r = self.regions[ref].index(region)
        for arrays in (served, sized):
            a = arrays[ref].copy()
            a[steps, r] *= factor
            arrays[ref] = a
        return DemandSeries(self.regions, served, sized, self.profiles, self.source, self.warnings)


def _rng(seed: int, ref: str, region: str) -> np.random.Generator:
    """A generator of its own per (deployment, region): adding a region changes no other."""
    return np.random.default_rng([seed, zlib.crc32(f"{ref}\x00{region}".encode())])


def generate(
    deployments: Sequence[InferenceDeployment],
    step_times: FloatArray,
    *,
    step_s: float,
    cities: Sequence[City],
    diurnal: Diurnal | None = None,
    burst: Burst | None = None,
    seed: int = 0,
    weights: str = "population",
    radius_km: float = 300.0,
    window_s: float = 300.0,
    populations: Mapping[str, float] | None = None,
    burst_of: Mapping[str, str] | None = None,
) -> DemandSeries:
    """Generated demand for every deployment with demand regions (module docstring).

    `burst_of`: deployment ref -> the ref whose burstiness it follows (an InferenceRouter's
    tiers follow the router's: they serve shares of the same requests)."""
    if weights not in ("population", "spec"):
        raise DemandError(f"weights must be population or spec, got {weights!r}")
    curve = diurnal or Diurnal()
    mult = (burst or Burst.from_csv()).multipliers
    n = len(mult)
    minutes = max(1, round(step_s / 60.0))
    window = max(1, round(window_s / 60.0))
    # circular means of `minutes` minutes from each start, maxima of the `window` before it
    lap = n * math.ceil(window / n)  # whole laps, so the window before a start exists
    ext = np.concatenate([mult] * (math.ceil((lap + n + minutes) / n) + 1))
    csum = np.concatenate([[0.0], np.cumsum(ext)])
    starts = np.arange(n) + lap
    served_of = (csum[starts + minutes] - csum[starts]) / minutes
    sized_of = np.array([ext[s - window : s + minutes].max() for s in starts])
    regions: dict[str, tuple[str, ...]] = {}
    served: dict[str, FloatArray] = {}
    sized: dict[str, FloatArray] = {}
    profiles: dict[str, tuple[RegionProfile, ...]] = {}
    given = dict(populations or {})
    burst_of = burst_of or {}
    for d in deployments:
        spec_regions = d.spec.demand.regions
        if not spec_regions:
            continue
        ref = d.ref
        total = sum(r.requests_per_second for r in spec_regions)
        profs = tuple(
            region_profile(
                r.name,
                r.country,
                r.latitude,
                r.longitude,
                cities,
                radius_km=radius_km,
                population=given.get(f"{ref}/{r.name}", given.get(r.name)),
            )
            for r in spec_regions
        )
        if weights == "population":
            pops = np.array([p.population for p in profs])
            share = pops / pops.sum() if pops.sum() > 0 else np.full(len(profs), 1 / len(profs))
        else:
            rps = np.array([r.requests_per_second for r in spec_regions])
            share = rps / total if total > 0 else np.full(len(profs), 1 / len(profs))
        s_arr = np.zeros((len(step_times), len(profs)))
        z_arr = np.zeros((len(step_times), len(profs)))
        for k, (r, p) in enumerate(zip(spec_regions, profs, strict=True)):
            base = total * share[k] * curve.factor(local_hours(step_times, p.timezone))
            pick = _rng(seed, burst_of.get(ref, ref), r.name).integers(0, n, size=len(step_times))
            s_arr[:, k] = base * served_of[pick]
            z_arr[:, k] = base * sized_of[pick]
        regions[ref] = tuple(r.name for r in spec_regions)
        served[ref] = s_arr
        sized[ref] = z_arr
        profiles[ref] = profs
    return DemandSeries(regions, served, sized, profiles, "generated")


def from_csv(
    path: str | Path, deployments: Sequence[InferenceDeployment], step_times: FloatArray
) -> DemandSeries:
    """Demand from `time,region,requestsPerSecond[,deployment]` rows (module docstring)."""
    text = read_text(path)
    rows = list(csv.reader(io.StringIO(text)))
    data = [
        (n, [c.strip() for c in row])
        for n, row in enumerate(rows, start=1)
        if row and "".join(row).strip() and not row[0].lstrip().startswith("#")
    ]
    if not data:
        raise DemandError(f"{path}: empty")
    header = [c.lower() for c in data[0][1]]
    expected = ["time", "region", "requestspersecond"]
    if (
        header[:3] != expected
        or len(header) > 4
        or (len(header) == 4 and header[3] != "deployment")
    ):
        raise DemandError(
            f"{path}: line {data[0][0]}: header must be time,region,requestsPerSecond[,deployment]"
        )
    by_key: dict[tuple[str | None, str], list[tuple[float, float]]] = {}
    problems: list[str] = []
    for n, cells in data[1:]:
        if len(cells) != len(header):
            problems.append(f"line {n}: expected {len(header)} cells, got {len(cells)}")
            continue
        try:
            stamp = datetime.fromisoformat(cells[0].replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"line {n}: time {cells[0]!r} is not ISO 8601")
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        try:
            rps = float(cells[2])
        except ValueError:
            problems.append(f"line {n}: requestsPerSecond {cells[2]!r} is not a number")
            continue
        if not math.isfinite(rps) or rps < 0:
            problems.append(f"line {n}: requestsPerSecond must be a finite number >= 0")
            continue
        dep = cells[3] if len(cells) == 4 and cells[3] else None
        by_key.setdefault((dep, cells[1]), []).append((stamp.timestamp(), rps))
    if problems:
        raise DemandError(f"{path}: " + "; ".join(problems[:20]))
    regions: dict[str, tuple[str, ...]] = {}
    served: dict[str, FloatArray] = {}
    used: set[tuple[str | None, str]] = set()
    for d in deployments:
        spec_regions = d.spec.demand.regions
        if not spec_regions:
            continue
        arr = np.zeros((len(step_times), len(spec_regions)))
        for k, r in enumerate(spec_regions):
            key = (d.ref, r.name) if (d.ref, r.name) in by_key else (None, r.name)
            points = by_key.get(key)
            if points is None:
                arr[:, k] = r.requests_per_second
                continue
            used.add(key)
            points.sort()
            t = np.array([p[0] for p in points])
            v = np.array([p[1] for p in points])
            i = np.searchsorted(t, step_times, side="right") - 1
            arr[:, k] = np.where(i >= 0, v[np.maximum(i, 0)], r.requests_per_second)
        regions[d.ref] = tuple(r.name for r in spec_regions)
        served[d.ref] = arr
    unknown = sorted(f"{dep + ': ' if dep else ''}{region}" for dep, region in set(by_key) - used)
    warnings = (
        (f"{path}: rows for undeclared regions ignored: {', '.join(unknown)}",) if unknown else ()
    )
    return DemandSeries(regions, served, dict(served), {}, f"csv: {path}", warnings)


def read_populations(path: str | Path) -> dict[str, float]:
    """`region,population` rows (region may be `namespace/name/region` for one deployment)."""
    out: dict[str, float] = {}
    for n, row in enumerate(csv.reader(io.StringIO(read_text(path))), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() == "region":
            continue
        try:
            out[row[0].strip()] = float(row[1])
        except (IndexError, ValueError):
            raise DemandError(f"{path}: line {n}: expected region,population") from None
    return out


# ------------------------------------------------------------------------------ sizing
def wanted(deployment: InferenceDeployment, rps: Mapping[str, float]) -> dict[str, int]:
    """Replicas per region for these requests/s: the operator's sizing rule.

    n_r = ceil(rps_r * (1 + headroom) / throughputPerReplica), the total clamped to
    replicas.min/max (fixed wins), re-split in proportion when the clamp bites; exactly what
    `placement.from_api.workload_view` does with `signals.demand.apply_demand`. Without demand
    regions: {"": fixed or min}.
    """
    spec = deployment.spec
    if not spec.demand.regions:
        return {"": spec.replicas.without_demand()}
    assert spec.throughput_per_replica is not None
    factor = (1.0 + spec.demand.headroom) / spec.throughput_per_replica
    need = {
        r.name: max(math.ceil(rps.get(r.name, r.requests_per_second) * factor - _CEIL_EPSILON), 0)
        for r in spec.demand.regions
    }
    total = spec.replicas.clamp(sum(need.values()))
    if sum(need.values()) != total:
        weights = (
            {k: float(v) for k, v in need.items()}
            if sum(need.values()) > 0
            else {r.name: rps.get(r.name, r.requests_per_second) for r in spec.demand.regions}
        )
        need = split_replicas(total, weights)
    return need


def wanted_series(
    deployment: InferenceDeployment, regions: Sequence[str], sized: FloatArray
) -> IntArray:
    """`wanted` at every step, vectorised: int array [steps, regions] (region order given)."""
    spec = deployment.spec
    assert spec.throughput_per_replica is not None
    factor = (1.0 + spec.demand.headroom) / spec.throughput_per_replica
    need = np.maximum(np.ceil(sized * factor - _CEIL_EPSILON), 0).astype(np.int64)
    sums = need.sum(axis=1)
    low = spec.replicas.clamp(0)
    for s in np.flatnonzero(
        (sums < low) | (sums > spec.replicas.clamp(10**9)) | (spec.replicas.fixed is not None)
    ):
        row = wanted(deployment, dict(zip(regions, sized[s].tolist(), strict=True)))
        need[s] = [row[r] for r in regions]
    return need


__all__ = [
    "Burst",
    "City",
    "DemandError",
    "DemandSeries",
    "Diurnal",
    "RegionProfile",
    "from_csv",
    "generate",
    "load_cities",
    "local_hours",
    "read_populations",
    "region_profile",
    "wanted",
    "wanted_series",
]
