"""Demand generation and reading: local time, populations, burstiness, seeding, the sizing rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.api import InferenceDeployment
from aifactory.placement.from_api import workload_view
from aifactory.signals.demand import apply_demand
from aifactory.simulation.demand import (
    Burst,
    DemandError,
    Diurnal,
    from_csv,
    generate,
    load_cities,
    local_hours,
    region_profile,
    wanted,
    wanted_series,
)
from aifactory.simulation.replay import period_steps

JAN = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
JUL = datetime(2022, 7, 1, tzinfo=UTC).timestamp()


def deployment(
    regions: list[tuple[str, str, float, float, float]],
    *,
    name: str = "app",
    replicas: dict[str, int] | None = None,
) -> InferenceDeployment:
    doc: dict[str, Any] = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "model": {"name": "m", "image": "registry.example/serve:1", "port": 8080},
            "resources": {"gpusPerReplica": 1},
            "replicas": replicas or {"min": 1, "max": 1000},
            "throughputPerReplica": 10,
            "demand": {
                "headroom": 0.2,
                "regions": [
                    {
                        "name": n,
                        "country": c,
                        "latitude": lat,
                        "longitude": lon,
                        "requestsPerSecond": rps,
                    }
                    for n, c, lat, lon, rps in regions
                ],
            },
        },
    }
    return InferenceDeployment.from_manifest(doc)


TOKYO = ("tokyo", "JP", 35.69, 139.69, 100.0)
NEW_YORK = ("new-york", "US", 40.71, -74.01, 100.0)
DUBLIN = ("dublin", "IE", 53.35, -6.26, 100.0)


def test_local_hours_follow_daylight_saving_time() -> None:
    assert local_hours(np.array([JAN]), "Europe/Berlin")[0] == pytest.approx(1.0)
    assert local_hours(np.array([JUL]), "Europe/Berlin")[0] == pytest.approx(2.0)
    assert local_hours(np.array([JAN]), "Asia/Kolkata")[0] == pytest.approx(5.5)


def test_demand_peaks_in_each_regions_local_afternoon() -> None:
    times = period_steps(JAN, JAN + 2 * 86400, 3600)
    d = deployment([TOKYO, NEW_YORK])
    series = generate(
        [d], times, step_s=3600, cities=load_cities(), diurnal=Diurnal(0.5, 15), burst=Burst.none()
    )
    served = series.served[d.ref]
    for k, tz in ((0, "Asia/Tokyo"), (1, "America/New_York")):
        peak = int(np.argmax(served[:24, k]))
        assert local_hours(times[peak : peak + 1], tz)[0] == pytest.approx(15.0)
    # the diurnal curve keeps the declared total as the daily mean
    assert served.sum(axis=1)[:24].mean() == pytest.approx(200.0, rel=1e-9)


def test_region_population_and_time_zone_come_from_geonames_unless_given() -> None:
    cities = load_cities()
    p = region_profile("eu-west", "IE", 53.35, -6.26, cities)
    assert p.timezone == "Europe/Dublin"
    assert p.population >= 1_000_000
    assert p.source == "GeoNames: 1 city within 300 km (Dublin)"
    de = region_profile("eu-central", "DE", 50.11, 8.68, cities)
    assert de.source.startswith("GeoNames: ") and " cities within 300 km (" in de.source
    given_ = region_profile("eu-west", "IE", 53.35, -6.26, cities, population=42.0)
    assert (given_.population, given_.source, given_.timezone) == (42.0, "given", "Europe/Dublin")


def test_population_weights_share_the_declared_total() -> None:
    times = period_steps(JAN, JAN + 86400, 3600)
    d = deployment([DUBLIN, TOKYO])
    s = generate([d], times, step_s=3600, cities=load_cities(), burst=Burst.none())
    pops = [p.population for p in s.profiles[d.ref]]
    daily = s.served[d.ref].mean(axis=0)
    assert daily.sum() == pytest.approx(200.0)
    assert daily[1] / daily[0] == pytest.approx(pops[1] / pops[0])
    spec = generate([d], times, step_s=3600, cities=load_cities(), weights="spec")
    assert spec.served[d.ref].mean(axis=0)[0] == pytest.approx(100.0, rel=0.1)


def test_burst_comes_from_the_trace_with_partial_minutes_left_out() -> None:
    b = Burst.from_csv()
    assert len(b.multipliers) == 58
    assert b.multipliers.mean() == pytest.approx(1.0)
    assert 0.5 < b.multipliers.min() < 1.0 < b.multipliers.max() < 2.0


def test_sizing_demand_is_the_steps_peak_and_served_its_mean() -> None:
    times = period_steps(JAN, JAN + 3 * 86400, 3600)
    d = deployment([DUBLIN, NEW_YORK])
    s = generate([d], times, step_s=3600, cities=load_cities(), seed=3)
    assert (s.sized[d.ref] >= s.served[d.ref] - 1e-9).all()
    assert s.served[d.ref].mean() == pytest.approx(100.0, rel=0.05)


def test_generation_is_seeded_per_deployment_and_region() -> None:
    times = period_steps(JAN, JAN + 86400, 3600)
    a = deployment([DUBLIN, TOKYO], name="a")
    b = deployment([NEW_YORK], name="b")
    one = generate([a], times, step_s=3600, cities=load_cities(), seed=1)
    two = generate([a, b], times, step_s=3600, cities=load_cities(), seed=1)
    other = generate([a], times, step_s=3600, cities=load_cities(), seed=2)
    assert np.array_equal(one.served[a.ref], two.served[a.ref])
    assert np.array_equal(one.sized[a.ref], two.sized[a.ref])
    assert not np.array_equal(one.served[a.ref], other.served[a.ref])


REGIONS = [DUBLIN, TOKYO, NEW_YORK]


@settings(max_examples=60, deadline=None)
@given(
    rps=st.lists(st.floats(0, 500, allow_nan=False), min_size=3, max_size=3),
    bounds=st.sampled_from(
        [{"min": 1, "max": 1000}, {"min": 20, "max": 40}, {"min": 0, "max": 3}, {"fixed": 7}]
    ),
)
def test_wanted_is_the_operators_sizing_rule(rps: list[float], bounds: dict[str, int]) -> None:
    d = deployment(REGIONS, replicas=bounds)
    sample = {r[0]: v for r, v in zip(REGIONS, rps, strict=True)}
    expected = {r.name: r.replicas for r in workload_view(apply_demand(d, sample)).regions}
    assert wanted(d, sample) == expected
    names = [r[0] for r in REGIONS]
    row = wanted_series(d, names, np.array([rps]))[0]
    assert dict(zip(names, row.tolist(), strict=True)) == expected


def test_demand_csv_rows_hold_until_the_next_and_undeclared_regions_are_ignored(
    tmp_path: Path,
) -> None:
    a = deployment([DUBLIN, TOKYO], name="a")
    b = deployment([DUBLIN], name="b")
    path = tmp_path / "demand.csv"
    path.write_text(
        "time,region,requestsPerSecond,deployment\n"
        "2022-01-01T01:00Z,dublin,50,\n"
        "2022-01-01T03:00Z,dublin,70,\n"
        "2022-01-01T02:00Z,dublin,5,ns/b\n"
        "2022-01-01T00:00Z,atlantis,9,\n"
    )
    times = period_steps(JAN, JAN + 5 * 3600, 3600)
    s = from_csv(path, [a, b], times)
    assert s.served["ns/a"][:, 0].tolist() == [100, 50, 50, 70, 70]
    assert s.served["ns/a"][:, 1].tolist() == [100] * 5  # never named: declared value
    assert s.served["ns/b"][:, 0].tolist() == [100, 100, 5, 5, 5]
    assert s.warnings and "atlantis" in s.warnings[0]


def test_demand_csv_errors_name_the_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,region,requestsPerSecond\nyesterday,x,1\n2022-01-01,x,-3\n")
    with pytest.raises(DemandError, match=r"line 2.*line 3"):
        from_csv(path, [], np.array([JAN]))
    (tmp_path / "head.csv").write_text("when,where,what\n")
    with pytest.raises(DemandError, match="header"):
        from_csv(tmp_path / "head.csv", [], np.array([JAN]))
