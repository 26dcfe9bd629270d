"""Haversine and the brief's RTT model, scalar and vectorised."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.placement import PlacementSettings
from aifactory.placement.geo import (
    haversine_km,
    haversine_km_matrix,
    km_to_rtt_ms,
    rtt_ms,
    rtt_ms_matrix,
    rtt_ms_row,
    unit_vectors,
)

S = PlacementSettings()
lat = st.floats(-90, 90)
lon = st.floats(-180, 180)


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((51.5074, -0.1278), (48.8566, 2.3522), 343.5),  # London-Paris
        ((40.7128, -74.0060), (51.5074, -0.1278), 5570.2),  # New York-London
        ((0.0, 0.0), (0.0, 180.0), np.pi * 6371.0),
        ((10.0, 10.0), (10.0, 10.0), 0.0),
    ],
)
def test_haversine_known(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert haversine_km(*a, *b, 6371.0) == pytest.approx(km, abs=0.5)


def test_rtt_formula() -> None:
    # 2 * 1000 km * 1.6 / 204.19 + 1.0
    assert km_to_rtt_ms(1000.0, S) == pytest.approx(2 * 1000 * 1.6 / 204.19 + 1.0)
    assert rtt_ms(1, 1, 1, 1, S) == pytest.approx(1.0)
    custom = PlacementSettings(route_factor=1.0, rtt_overhead_ms=0.0)
    assert km_to_rtt_ms(204.19, custom) == pytest.approx(2.0)


@settings(max_examples=50, deadline=None)
@given(lat, lon, st.lists(st.tuples(lat, lon), min_size=1, max_size=5))
def test_vectorised_matches_scalar(la: float, lo: float, points: list[tuple[float, float]]) -> None:
    lats = np.array([p[0] for p in points])
    lons = np.array([p[1] for p in points])
    km = haversine_km_matrix(np.array([la]), np.array([lo]), lats, lons, 6371.0)[0]
    rtt = rtt_ms_matrix(np.array([la]), np.array([lo]), lats, lons, S)[0]
    row = rtt_ms_row(la, lo, unit_vectors(lats, lons), S)
    for i, (pla, plo) in enumerate(points):
        assert km[i] == pytest.approx(haversine_km(la, lo, pla, plo, 6371.0), abs=1e-6)
        assert rtt[i] == pytest.approx(rtt_ms(la, lo, pla, plo, S), abs=1e-6)
        assert row[i] == pytest.approx(rtt[i], abs=1e-6)
