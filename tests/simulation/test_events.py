"""Injected events: parsing, module states over time, and what the replay does with them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from aifactory.controllers.planner import Cells
from aifactory.simulation import SimulationConfig, SimulationError, build_timeline, load_scenario
from aifactory.simulation.events import (
    EventError,
    module_states,
    parse_duration,
    parse_event,
    read_events,
    spike_factors,
)
from aifactory.simulation.replay import period_steps, run_policies
from aifactory.simulation.series import load_carbon

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "simulation"
T0 = datetime(2022, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "target", "factor", "duration"),
    [
        ("2022-03-01T10:00Z module-down reykjavik", "module-down", "reykjavik", 1.0, 0.0),
        ("2022-03-01T10:00Z module-up reykjavik", "module-up", "reykjavik", 1.0, 0.0),
        ("2022-03-01T10:00:00+01:00 cordon paris", "cordon", "paris", 1.0, 0.0),
        ("2022-03-01 uncordon paris  # a comment", "uncordon", "paris", 1.0, 0.0),
        ("2022-03-01T10:00Z demand-spike eu-west 3 6h", "demand-spike", "eu-west", 3.0, 21600.0),
    ],
)
def test_events_parse(text: str, kind: str, target: str, factor: float, duration: float) -> None:
    e = parse_event(text)
    assert (e.kind, e.target, e.factor, e.duration_s) == (kind, target, factor, duration)
    assert e.at.tzinfo is not None


def test_times_without_offset_are_utc_and_offsets_are_converted() -> None:
    assert parse_event("2022-03-01T10:00 cordon x").at == datetime(2022, 3, 1, 10, tzinfo=UTC)
    assert parse_event("2022-03-01T10:00+02:00 cordon x").at == datetime(2022, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("module-down x", "expected TIME KIND TARGET"),
        ("2022-03-01T10:00Z explode x", "unknown kind"),
        ("yesterday cordon x", "not an ISO 8601 time"),
        ("2022-03-01T10:00Z demand-spike eu-west 3", "needs REGION FACTOR DURATION"),
        ("2022-03-01T10:00Z demand-spike eu-west x 1h", "not a number"),
        ("2022-03-01T10:00Z demand-spike eu-west 2 6 hours", "needs REGION FACTOR DURATION"),
        ("2022-03-01T10:00Z cordon x now", "takes no arguments"),
    ],
)
def test_bad_events_are_refused_quoting_them(text: str, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(text)


def test_durations() -> None:
    assert [parse_duration(x) for x in ("30s", "90m", "6h", "2d", "1.5h")] == [
        30,
        5400,
        21600,
        172800,
        5400,
    ]
    with pytest.raises(EventError):
        parse_duration("6 hours")


def test_read_events_skips_comments_and_sorts() -> None:
    events = read_events(
        ["# outage drill", "", "2022-01-02 module-up a", "2022-01-01 module-down a"]
    )
    assert [e.kind for e in events] == ["module-down", "module-up"]


def test_module_states_follow_the_operators_rule() -> None:
    slots = period_steps(T0.timestamp(), T0.timestamp() + 4 * 3600, 300)
    events = read_events(
        [
            "2022-01-01T01:00Z module-down a",
            "2022-01-01T02:00Z module-up a",
            "2022-01-01T01:00Z cordon b",
            "2022-01-01T03:00Z uncordon b",
        ]
    )
    states = module_states(["a", "b"], [True, True], events, slots, toleration_s=600)
    at = {int((t - T0.timestamp()) // 300): i for i, t in enumerate(slots)}
    a_use = states.usable[:, 0]
    a_place = states.placeable[:, 0]
    assert a_use[at[11]] and a_place[at[11]]  # 00:55 Ready
    assert a_use[at[12]] and not a_place[at[12]]  # NotReady within tolerationSeconds: stays
    assert a_use[at[13]] and not a_place[at[13]]
    assert not a_use[at[14]] and not a_place[at[14]]  # 10 minutes: replicas re-placed
    assert a_use[at[24]] and a_place[at[24]]  # Ready again
    b_use, b_place = states.usable[:, 1], states.placeable[:, 1]
    assert b_use.all()  # a cordon keeps what runs
    assert not b_place[at[12] : at[36]].any() and b_place[at[36]]


def test_spikes_multiply_the_steps_they_overlap() -> None:
    steps = period_steps(T0.timestamp(), T0.timestamp() + 6 * 3600, 3600)
    events = read_events(
        ["2022-01-01T01:30Z demand-spike r 3 2h", "2022-01-01T02:00Z demand-spike r 2 1h"]
    )
    assert spike_factors(events, "r", steps, 3600).tolist() == [1, 3, 6, 3, 1, 1]
    assert spike_factors(events, "other", steps, 3600).tolist() == [1] * 6


def run_sample(
    events: list[str], hours: int, policies: tuple[str, ...]
) -> tuple[list[object], dict[str, list[Mapping[str, Cells]]]]:
    scenario = load_scenario([SAMPLE])
    config = SimulationConfig.from_operator(policies=policies)
    built = build_timeline(
        scenario,
        config,
        start=T0,
        end=T0 + timedelta(hours=hours),
        carbon=load_carbon([SAMPLE / "carbon-2022.csv.gz"]),
        events=read_events(events),
    )
    seen: dict[str, list[Mapping[str, Cells]]] = {p: [] for p in policies}

    def observe(policy: str, step: int, cells: Mapping[str, Cells]) -> None:
        seen[policy].append({ref: dict(c) for ref, c in cells.items()})

    results = run_policies(scenario, built.timeline, config, policies, observe=observe)
    return list(results), seen


def on(cells: Mapping[str, Cells], module: str) -> int:
    return sum(k for c in cells.values() for (_, m), k in c.items() if m == module)


def test_a_lost_module_is_emptied_after_the_toleration_and_nothing_moves_back() -> None:
    results, seen = run_sample(
        ["2022-01-01T03:00Z module-down montreal", "2022-01-01T06:00Z module-up montreal"],
        hours=9,
        policies=("engine", "static"),
    )
    for r in results:
        assert r.violations == {"sovereignty": 0, "slo": 0, "capacity": 0}  # type: ignore[attr-defined]
    static = seen["static"]
    assert on(static[2], "montreal") > 0
    assert all(on(static[h], "montreal") == 0 for h in (3, 4, 5))  # re-placed within the hour
    rescheduled = results[1].series["rescheduled"]  # type: ignore[attr-defined]
    # re-placed at the first slot past tolerationSeconds (demand may shrink them first)
    assert 0 < rescheduled[3] <= on(static[2], "montreal")
    assert rescheduled.sum() == rescheduled[3]
    # the module's return moves nothing back by itself: static never moves a replica
    assert results[1].series["moved"].sum() == 0  # type: ignore[attr-defined]


def test_a_cordon_keeps_what_runs_and_takes_nothing_new() -> None:
    results, seen = run_sample(["2022-01-01T02:00Z cordon montreal"], 8, ("static",))
    counts = [on(c, "montreal") for c in seen["static"]]
    assert counts[1] > 0
    assert all(later <= counts[1] for later in counts[2:])  # only demand shrinks it
    assert results[0].series["rescheduled"].sum() == 0  # type: ignore[attr-defined]


def test_a_demand_spike_adds_replicas_for_its_duration() -> None:
    base, _ = run_sample([], 6, ("static",))
    spiked, _ = run_sample(["2022-01-01T02:00Z demand-spike eu-west 3 2h"], 6, ("static",))
    b = base[0].series["replicaHours"]  # type: ignore[attr-defined]
    s = spiked[0].series["replicaHours"]  # type: ignore[attr-defined]
    assert np.array_equal(b[:2], s[:2])
    assert (s[2:4] > b[2:4]).all()


def test_events_naming_unknown_modules_or_regions_are_refused() -> None:
    with pytest.raises(SimulationError, match=r"no module atlantis.*no demand region mars"):
        run_sample(
            ["2022-01-01T01:00Z cordon atlantis", "2022-01-01T01:00Z demand-spike mars 2 1h"],
            2,
            ("static",),
        )
