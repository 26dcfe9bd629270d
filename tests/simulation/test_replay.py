"""The replay loop: its shortcuts change no answer, runs repeat exactly, hard rules hold."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from aifactory.controllers.planner import Cells
from aifactory.simulation import (
    POLICY_NAMES,
    SimulationConfig,
    SimulationError,
    build_timeline,
    load_scenario,
    simulate,
)
from aifactory.simulation.events import read_events
from aifactory.simulation.replay import WEIGHT, PolicyResult, groups, run_policies
from aifactory.simulation.series import load_carbon

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "simulation"
T0 = datetime(2022, 3, 20, tzinfo=UTC)  # spring: solar and wind move the ranking within a day
EVENTS = [
    "2022-03-20T09:00Z module-down oslo",
    "2022-03-20T15:00Z module-up oslo",
    "2022-03-20T12:00Z cordon madrid",
    "2022-03-20T18:00Z demand-spike eu-central 2 3h",
]


@pytest.fixture(scope="module")
def inputs() -> tuple[object, object, SimulationConfig]:
    scenario = load_scenario([SAMPLE])
    config = SimulationConfig.from_operator()
    built = build_timeline(
        scenario,
        config,
        start=T0,
        end=T0 + timedelta(hours=30),
        carbon=load_carbon([SAMPLE / "carbon-2022.csv.gz"]),
        events=read_events(EVENTS),
    )
    return scenario, built.timeline, config


def same(a: PolicyResult, b: PolicyResult) -> list[str]:
    return [k for k in a.series if not np.allclose(a.series[k], b.series[k], atol=1e-9)]


def test_shortcuts_give_the_engines_own_answers(
    inputs: tuple[object, object, SimulationConfig],
) -> None:
    """Skipped fleet solves, reused prepared states, carried caches and the direct keep-or-
    repair path must not change a single number: `exact` calls the engine for everything."""
    scenario, timeline, config = inputs
    seen: dict[tuple[str, bool], list[Mapping[str, Cells]]] = {}

    def observer(exact: bool):  # type: ignore[no-untyped-def]
        def observe(policy: str, step: int, cells: Mapping[str, Cells]) -> None:
            seen.setdefault((policy, exact), []).append({r: dict(c) for r, c in cells.items()})

        return observe

    fast = run_policies(scenario, timeline, config, POLICY_NAMES, observe=observer(False))  # type: ignore[arg-type]
    exact = run_policies(
        scenario, timeline, config, POLICY_NAMES, exact=True, observe=observer(True)
    )  # type: ignore[arg-type]
    for f, e in zip(fast, exact, strict=True):
        assert same(f, e) == [], f.name
        assert seen[(f.name, False)] == seen[(f.name, True)], f.name
        assert f.counters["fleetSolves"] <= e.counters["fleetSolves"]


def test_runs_repeat_exactly_and_do_not_depend_on_workers(
    inputs: tuple[object, object, SimulationConfig],
) -> None:
    scenario, timeline, config = inputs
    import dataclasses

    one = simulate(scenario, timeline, dataclasses.replace(config, workers=1))  # type: ignore[arg-type]
    two = simulate(scenario, timeline, dataclasses.replace(config, workers=2))  # type: ignore[arg-type]
    assert [r.name for r in one] == list(POLICY_NAMES) == [r.name for r in two]
    for a, b in zip(one, two, strict=True):
        assert same(a, b) == []
        assert a.rtt_histogram == b.rtt_histogram


def test_hard_rules_hold_through_failures_cordons_and_spikes(
    inputs: tuple[object, object, SimulationConfig],
) -> None:
    scenario, timeline, config = inputs
    import dataclasses

    results = run_policies(
        scenario,  # type: ignore[arg-type]
        timeline,  # type: ignore[arg-type]
        dataclasses.replace(config, strict=True),
        POLICY_NAMES,
    )
    for r in results:
        assert r.violations == {"sovereignty": 0, "slo": 0, "capacity": 0}, r.findings
        s = r.summary()
        assert s["unplacedReplicaHours"] == 0
        assert s["withinSloShare"] == pytest.approx(1.0)
    by = {r.name: r for r in results}
    assert by["static"].series["moved"].sum() == 0
    assert by["engine"].series["rescheduled"].sum() > 0  # oslo's replicas left after toleration


def test_policies_differ_as_designed(inputs: tuple[object, object, SimulationConfig]) -> None:
    scenario, timeline, config = inputs
    results = {r.name: r.summary() for r in run_policies(scenario, timeline, config, POLICY_NAMES)}  # type: ignore[arg-type]
    assert results["carbon-only"]["kgCO2e"] < results["engine"]["kgCO2e"]
    assert results["engine"]["kgCO2e"] < results["latency-only"]["kgCO2e"]
    assert results["latency-only"]["meanRttMs"] < results["engine"]["meanRttMs"]
    assert results["engine"]["meanRttMs"] < results["carbon-only"]["meanRttMs"]


def test_workers_share_the_load() -> None:
    split = groups(POLICY_NAMES, 2)
    assert sorted(name for group in split for name in group) == sorted(POLICY_NAMES)
    load = [sum(WEIGHT[name] for name in group) for group in split]
    # no other split of the five policies over two workers has a lighter heaviest group
    best = min(
        max(
            sum(WEIGHT[n] for n, side in zip(POLICY_NAMES, sides, strict=True) if side),
            sum(WEIGHT[n] for n, side in zip(POLICY_NAMES, sides, strict=True) if not side),
        )
        for sides in itertools.product([True, False], repeat=len(POLICY_NAMES))
    )
    assert max(load) == pytest.approx(best)
    # the measured year costs of the two groups are within 10% of each other
    assert max(load) <= 1.1 * min(load)
    assert split == [["engine", "serve-in-country", "static"], ["latency-only", "carbon-only"]]
    for group in split:  # each group keeps the configured order
        assert group == [n for n in POLICY_NAMES if n in group]
    assert groups(POLICY_NAMES, 1) == [list(POLICY_NAMES)]
    assert groups(["static"], 4) == [["static"]]
    assert all(len(g) == 1 for g in groups(POLICY_NAMES, 5))


def test_bad_settings_are_refused(inputs: tuple[object, object, SimulationConfig]) -> None:
    scenario, timeline, config = inputs
    import dataclasses

    with pytest.raises(SimulationError, match="whole number of rebalance intervals"):
        simulate(scenario, timeline, dataclasses.replace(config, rebalance_interval_s=700))  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="unknown policy"):
        simulate(scenario, timeline, dataclasses.replace(config, policies=("greedy",)))  # type: ignore[arg-type]
