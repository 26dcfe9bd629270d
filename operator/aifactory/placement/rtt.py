"""Measured round-trip times and the named constant sets of the RTT model.

RTT(region, module) comes from a measured table where one covers the pair, else from the
physics model of `geo.py` (2 * haversine_km * route_factor / fibre_km_per_ms + overhead). The
table is keyed by names, not coordinates: a demand region's `name` and a module's name, exactly
as they appear in the manifests, because that is what a probe (blackbox-exporter, a mesh's
telemetry) reports. Parsing text into a table lives in `aifactory.signals.rtt`; the engine only
sees the value type here.

The profiles are the model's constants fitted to public measurements (docs/latency.md,
`bench/rtt_model.py`): "brief" is the product brief's model, "calibrated-mean" matches mean
RTTs between GCP regions, "calibrated-p95" the P95 RTTs between Azure regions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from aifactory.placement.model import PlacementSettings

#: Which RTT an explanation or a decision used for a (region, module) pair.
RttSource = Literal["measured", "model"]
MEASURED: RttSource = "measured"
MODEL: RttSource = "model"

RttProfileName = Literal["brief", "calibrated-mean", "calibrated-p95"]


@dataclass(frozen=True, slots=True)
class RttProfile:
    """One set of constants of the RTT model: 2 * km * route_factor / fibre_km_per_ms +
    overhead_ms. `fitted_on` says which measurements chose the constants."""

    name: str
    route_factor: float
    fibre_km_per_ms: float
    overhead_ms: float
    fitted_on: str


#: Named constant sets. Route factor 1.6 and 204.19 km/ms (light in fibre, refractive index
#: ~1.468) are the brief's and fit the slope of both data sets (least squares gives 1.55 for GCP
#: and 1.58 for Azure); the calibrated overheads are the median of (measured RTT - distance term)
#: over all region pairs, rounded to 0.5 ms (docs/latency.md, `bench/rtt_model.py` recomputes
#: them and tests/placement/test_rtt_profiles.py checks they still match the data).
RTT_PROFILES: Mapping[str, RttProfile] = MappingProxyType(
    {
        "brief": RttProfile("brief", 1.6, 204.19, 1.0, "the product brief"),
        "calibrated-mean": RttProfile(
            "calibrated-mean",
            1.6,
            204.19,
            4.0,
            "mean RTT between 34 GCP regions, 1,122 directed pairs (Sukprasert et al., "
            "EuroSys 2024 artifact)",
        ),
        "calibrated-p95": RttProfile(
            "calibrated-p95",
            1.6,
            204.19,
            12.0,
            "P95 RTT between 42 Azure regions, 1,722 directed pairs (Microsoft, Azure network "
            "round-trip latency statistics, 30 days to 2026-07-30)",
        ),
    }
)


def rtt_profile(name: str) -> RttProfile:
    """The named profile; raises ValueError naming the known ones."""
    try:
        return RTT_PROFILES[name]
    except KeyError:
        known = ", ".join(RTT_PROFILES)
        raise ValueError(f"unknown RTT profile {name!r}; one of: {known}") from None


def with_rtt_profile(settings: PlacementSettings, name: str) -> PlacementSettings:
    """`settings` with the RTT constants of the named profile (everything else unchanged)."""
    p = rtt_profile(name)
    return dataclasses.replace(
        settings,
        route_factor=p.route_factor,
        fibre_km_per_ms=p.fibre_km_per_ms,
        rtt_overhead_ms=p.overhead_ms,
    )


@dataclass(frozen=True, slots=True)
class RttTable:
    """Measured RTTs in ms by (demand region name, module name).

    Pairs are directed the way the engine asks: from a deployment's demand region to a module.
    Values are finite and >= 0 (checked on construction; a ValueError names the pair).
    `source` says where the table came from (a file name, "configmap ns/name"), for
    explanations and error messages.
    """

    pairs: Mapping[tuple[str, str], float] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        clean: dict[tuple[str, str], float] = {}
        for (region, module), ms in self.pairs.items():
            value = float(ms)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"RTT {region} -> {module} must be a finite number >= 0, got {ms}")
            clean[(region, module)] = value
        object.__setattr__(self, "pairs", MappingProxyType(clean))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float]], *, source: str = "") -> RttTable:
        """Build from (region, module, ms) rows; a repeated pair keeps the last value."""
        return cls({(r, m): ms for r, m, ms in rows}, source=source)

    def get(self, region: str, module: str) -> float | None:
        """The measured RTT of one pair, or None when the table does not cover it."""
        return self.pairs.get((region, module))

    def for_region(self, region: str) -> dict[str, float]:
        """Module name -> measured RTT for one demand region (empty when none)."""
        return {m: ms for (r, m), ms in self.pairs.items() if r == region}

    @property
    def regions(self) -> frozenset[str]:
        """Demand region names the table covers at least once."""
        return frozenset(r for r, _ in self.pairs)

    @property
    def modules(self) -> frozenset[str]:
        """Module names the table covers at least once."""
        return frozenset(m for _, m in self.pairs)

    def merged(self, other: RttTable) -> RttTable:
        """This table overridden by `other` where both cover a pair."""
        source = ", ".join(s for s in (self.source, other.source) if s)
        return RttTable({**self.pairs, **other.pairs}, source=source)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[str, str, float]]:
        for (r, m), ms in sorted(self.pairs.items()):
            yield r, m, ms


__all__ = [
    "MEASURED",
    "MODEL",
    "RTT_PROFILES",
    "RttProfile",
    "RttProfileName",
    "RttSource",
    "RttTable",
    "rtt_profile",
    "with_rtt_profile",
]
