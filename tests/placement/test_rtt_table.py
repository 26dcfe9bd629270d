"""Measured RTTs replace the model for the pairs a table covers, and explanations say so."""

from __future__ import annotations

import math

import pytest
from tests.placement.factories import DE, FR, IE, module, region, workload

from aifactory.placement import FleetState, PlacementSettings, place_fleet, place_one
from aifactory.placement.cycle import prepare
from aifactory.placement.geo import rtt_ms
from aifactory.placement.rtt import RTT_PROFILES, RttTable, rtt_profile, with_rtt_profile

S = PlacementSettings()


def model_ms(a: tuple[str, float, float], b: tuple[str, float, float]) -> float:
    return rtt_ms(a[1], a[2], b[1], b[2], S)


def test_measured_pairs_override_the_model_and_others_keep_it() -> None:
    mods = [module("paris", FR), module("frankfurt", DE)]
    table = RttTable({("eu-west", "paris"): 42.0, ("eu-west", "nowhere"): 1.0})
    fleet = FleetState(mods, rtt=table)
    ws = prepare(fleet, workload(regions=[region("eu-west", IE), region("eu-east", IE)]))
    assert ws.rtt is not None and ws.rtt_measured is not None
    col = {n: i for i, n in enumerate(fleet.names)}
    assert ws.rtt[0, col["paris"]] == 42.0
    assert ws.rtt[0, col["frankfurt"]] == pytest.approx(model_ms(IE, DE))
    # Same coordinates, other name: the table is keyed by region name, not by location.
    assert ws.rtt[1, col["paris"]] == pytest.approx(model_ms(IE, FR))
    assert ws.rtt_measured.tolist() == [[False, True], [False, False]]


def test_without_a_table_nothing_is_marked_measured() -> None:
    fleet = FleetState([module("paris", FR)])
    ws = prepare(fleet, workload(regions=[region("eu-west", IE)]))
    assert ws.rtt_measured is None


def test_a_measured_rtt_changes_the_choice_and_the_explanation() -> None:
    # By the model Paris is nearer to Dublin than Frankfurt; the probes say otherwise.
    mods = [module("paris", FR), module("frankfurt", DE)]
    wl = workload(regions=[region("eu-west", IE)])
    assert [a.module for a in place_one(wl, mods).assignments] == ["paris"]
    table = RttTable({("eu-west", "paris"): 60.0, ("eu-west", "frankfurt"): 15.0})
    d = place_one(wl, FleetState(mods, rtt=table))
    assert [a.module for a in d.assignments] == ["frankfurt"]
    assert d.assignments[0].latency_ms == {"eu-west": 15.0}
    assert "Latency 15.0 ms [measured]" in d.explanation["frankfurt"]
    assert "Latency 60.0 ms [measured]" in d.explanation["paris"]


def test_explanation_tags_model_pairs_too() -> None:
    mods = [module("paris", FR), module("frankfurt", DE)]
    table = RttTable({("eu-west", "paris"): 9.0})
    d = place_one(workload(regions=[region("eu-west", IE)]), FleetState(mods, rtt=table))
    assert "[measured]" in d.explanation["paris"]
    assert f"Latency {model_ms(IE, DE):.1f} ms [model]" in d.explanation["frankfurt"]


def test_latency_slo_filter_uses_the_measured_value() -> None:
    mods = [module("paris", FR)]
    wl = workload(regions=[region("eu-west", IE)], max_latency_ms=20)
    assert place_one(wl, mods).unplaced_replicas == 0  # model: ~13 ms
    d = place_one(wl, FleetState(mods, rtt=RttTable({("eu-west", "paris"): 35.0})))
    assert d.unplaced_replicas == 1
    assert d.explanation["paris"] == "rejected: latency > 20 ms for eu-west"


def test_fleet_mode_reads_the_table_from_the_fleet_state() -> None:
    mods = [module("paris", FR), module("frankfurt", DE)]
    table = RttTable({("eu-west", "paris"): 60.0})
    result = place_fleet([workload(regions=[region("eu-west", IE)])], FleetState(mods, rtt=table))
    assert [a.module for a in result.placements[0].assignments] == ["frankfurt"]


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_table_rejects_values_that_are_not_rtts(bad: float) -> None:
    with pytest.raises(ValueError, match="eu-west -> paris"):
        RttTable({("eu-west", "paris"): bad})


def test_table_helpers() -> None:
    t = RttTable.from_rows([("a", "m1", 1.0), ("a", "m2", 2.0), ("b", "m1", 3.0)], source="f")
    assert len(t) == 3 and t.get("a", "m2") == 2.0 and t.get("b", "m2") is None
    assert t.for_region("a") == {"m1": 1.0, "m2": 2.0}
    assert t.regions == {"a", "b"} and t.modules == {"m1", "m2"}
    merged = t.merged(RttTable({("a", "m1"): 9.0}, source="g"))
    assert merged.get("a", "m1") == 9.0 and merged.get("b", "m1") == 3.0
    assert merged.source == "f, g"
    assert list(t) == [("a", "m1", 1.0), ("a", "m2", 2.0), ("b", "m1", 3.0)]


def test_profiles_set_the_model_constants() -> None:
    s = with_rtt_profile(PlacementSettings(hysteresis=0.3), "calibrated-p95")
    p = RTT_PROFILES["calibrated-p95"]
    assert (s.route_factor, s.fibre_km_per_ms, s.rtt_overhead_ms) == (
        p.route_factor,
        p.fibre_km_per_ms,
        p.overhead_ms,
    )
    assert s.hysteresis == 0.3  # nothing else changes
    brief = RTT_PROFILES["brief"]
    assert (brief.route_factor, brief.fibre_km_per_ms, brief.overhead_ms) == (1.6, 204.19, 1.0)
    assert rtt_ms(1, 1, 1, 1, s) == pytest.approx(p.overhead_ms)
    with pytest.raises(ValueError, match="calibrated-mean"):
        rtt_profile("fast")
