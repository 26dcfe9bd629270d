"""Great-circle distance and the brief's round-trip-time model, scalar and vectorised.

RTT(region, module) = 2 * haversine_km * route_factor / fibre_km_per_ms + overhead. The scalar
form is for explanations and tests; the numpy form computes a (regions x modules) matrix in one
pass, which is what keeps placing on 10,000 modules in the millisecond range.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from aifactory.placement.model import PlacementSettings

FloatArray = npt.NDArray[np.float64]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float, radius_km: float) -> float:
    """Great-circle distance between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * radius_km * math.asin(min(1.0, math.sqrt(a)))


def rtt_ms(
    lat1: float, lon1: float, lat2: float, lon2: float, settings: PlacementSettings
) -> float:
    """Round-trip time between a demand region and a module, per the brief."""
    km = haversine_km(lat1, lon1, lat2, lon2, settings.earth_radius_km)
    return km_to_rtt_ms(km, settings)


def km_to_rtt_ms(km: float, settings: PlacementSettings) -> float:
    """RTT for a great-circle distance: there and back along a route longer than the arc."""
    return 2.0 * km * settings.route_factor / settings.fibre_km_per_ms + settings.rtt_overhead_ms


def haversine_km_matrix(
    lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray, radius_km: float
) -> FloatArray:
    """Distances (len(lat1) x len(lat2)) in km between two sets of points given in degrees."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))[:, None]
    l1 = np.radians(np.asarray(lon1, dtype=np.float64))[:, None]
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))[None, :]
    l2 = np.radians(np.asarray(lon2, dtype=np.float64))[None, :]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    out: FloatArray = 2.0 * radius_km * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return out


def rtt_ms_matrix(
    lat1: FloatArray,
    lon1: FloatArray,
    lat2: FloatArray,
    lon2: FloatArray,
    settings: PlacementSettings,
) -> FloatArray:
    """RTT (len(lat1) x len(lat2)) in ms; rows are demand regions, columns modules."""
    km = haversine_km_matrix(lat1, lon1, lat2, lon2, settings.earth_radius_km)
    out: FloatArray = 2.0 * km * (settings.route_factor / settings.fibre_km_per_ms)
    out += settings.rtt_overhead_ms
    return out


def unit_vectors(lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
    """Points on the unit sphere (n x 3), precomputed once per cycle for the fleet's modules."""
    p = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lam = np.radians(np.asarray(lon_deg, dtype=np.float64))
    out: FloatArray = np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)], 1)
    return out


def rtt_ms_row(
    latitude: float, longitude: float, units: FloatArray, settings: PlacementSettings
) -> FloatArray:
    """RTT from one point to many given as unit vectors (see `unit_vectors`).

    The same great-circle distance as `haversine_km`, from the chord between unit vectors:
    hav(theta) = sin^2(theta/2) = (|u - v| / 2)^2. Unlike (1 - cos theta)/2 from a dot product,
    this keeps full precision for points close together, and it still needs no trigonometry
    per module.
    """
    p1, l1 = math.radians(latitude), math.radians(longitude)
    u = np.array([math.cos(p1) * math.cos(l1), math.cos(p1) * math.sin(l1), math.sin(p1)])
    d = units - u
    a = np.einsum("ij,ij->i", d, d) * 0.25
    np.clip(a, 0.0, 1.0, out=a)
    km = (2.0 * settings.earth_radius_km) * np.arcsin(np.sqrt(a))
    out: FloatArray = km * (2.0 * settings.route_factor / settings.fibre_km_per_ms)
    out += settings.rtt_overhead_ms
    return out
