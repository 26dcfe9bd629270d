"""MeasuredLatencySLO: (region, module) pairs whose measured latency broke the SLO."""

from __future__ import annotations

from tests.placement.factories import DE, FR, IE, module, region, state, workload

from aifactory.placement import place_one
from aifactory.placement.filters import measured_latency


def test_no_exclusions_pass_everything() -> None:
    fleet, ws = state([module("a"), module("b")], workload(regions=[region()], max_latency_ms=50))
    v = measured_latency.filter(fleet, ws)
    assert v.ok.all()


def test_an_excluded_pair_fails_only_for_its_region() -> None:
    wl = workload(
        regions=[region("eu-west", IE), region("de-central", DE)],
        max_latency_ms=50,
        slo_excluded=frozenset({("eu-west", "paris")}),
    )
    fleet, ws = state([module("paris", FR), module("frankfurt", DE)], wl)
    v = measured_latency.filter(fleet, ws)
    paris, frankfurt = fleet.index["paris"], fleet.index["frankfurt"]
    assert not v.ok[0, paris] and v.ok[1, paris]
    assert v.ok[:, frankfurt].all()
    assert v.reasons[0] == measured_latency.REASON_MEASURED.format(ms=50, region="eu-west")
    assert not ws.static_ok[0, paris]  # a running replica there breaks the rule: it moves


def test_unknown_modules_and_regions_are_ignored() -> None:
    wl = workload(
        regions=[region("eu-west", IE)],
        max_latency_ms=50,
        slo_excluded=frozenset({("eu-west", "gone"), ("nowhere", "paris")}),
    )
    fleet, ws = state([module("paris", FR)], wl)
    assert measured_latency.filter(fleet, ws).ok.all()


def test_placement_serves_the_region_from_elsewhere() -> None:
    mods = [module("paris", FR, carbon_intensity=10.0), module("frankfurt", DE)]
    wl = workload(regions=[region("eu-west", IE, 2)], max_latency_ms=50)
    assert {a.module for a in place_one(wl, mods).assignments} == {"paris"}
    out = place_one(
        workload(
            regions=[region("eu-west", IE, 2)],
            max_latency_ms=50,
            slo_excluded=frozenset({("eu-west", "paris")}),
        ),
        mods,
    )
    assert {a.module for a in out.assignments} == {"frankfurt"}
    assert "measured latency above 50 ms for eu-west" in out.explanation["paris"]
