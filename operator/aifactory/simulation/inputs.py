"""From files to a simulation: the scenario (manifests) and its timeline (signals, events).

`load_scenario` reads manifests as `aifactoryctl place` does (kubectl's reading, the apiserver's
checks). `build_timeline` turns the period, the carbon series, demand (generated or a CSV) and
the events into the per-step and per-slot arrays `replay.simulate` consumes, the same for every
policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from aifactory.cli.manifests import Snapshot, load
from aifactory.placement.from_api import priority_class_view
from aifactory.routers.tiers import derive, with_tiers
from aifactory.simulation.demand import (
    Burst,
    DemandSeries,
    Diurnal,
    from_csv,
    generate,
    load_cities,
    wanted_series,
)
from aifactory.simulation.events import Event, check_targets, module_states, spike_factors
from aifactory.simulation.replay import Scenario, SimulationConfig, SimulationError, Timeline
from aifactory.simulation.series import CarbonSeries, energy_timeline


def load_scenario(paths: Sequence[str | Path], *, recursive: bool = False) -> Scenario:
    """Modules, deployments, policies, namespaces and PriorityClasses from manifest files.

    Raises cli.manifests.ManifestError listing every problem.
    """
    return scenario_of(load(paths, recursive=recursive))


def scenario_of(snap: Snapshot) -> Scenario:
    """The scenario of loaded manifests. InferenceRouters' tier deployments carry their
    router's demand x share per region (spec values), as `aifactoryctl place` places them."""
    tiers = derive(snap.routers, snap.deployments)
    return Scenario(
        modules=tuple(snap.modules),
        deployments=tuple(with_tiers(snap.deployments, tiers)),
        policies=tuple(snap.policies),
        namespaces=dict(snap.namespaces),
        priority_classes=tuple(priority_class_view(c) for c in snap.priority_classes),
        tier_of={ref: t.router for ref, t in tiers.tiers.items()},
    )


@dataclass(frozen=True)
class DemandOptions:
    """How demand is made (see `demand`): a CSV, or generated with these knobs."""

    csv: str | None = None
    seed: int = 0
    weights: str = "population"
    radius_km: float = 300.0
    diurnal: Diurnal = field(default_factory=Diurnal)
    burst: bool = True
    populations: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    """A timeline and what was learnt on the way (for the report)."""

    timeline: Timeline
    demand: DemandSeries
    warnings: tuple[str, ...]


def build_timeline(
    scenario: Scenario,
    config: SimulationConfig,
    *,
    start: datetime,
    end: datetime,
    carbon: CarbonSeries,
    zone_map: Mapping[str, str] | None = None,
    demand: DemandOptions | None = None,
    events: Sequence[Event] = (),
) -> Built:
    """The policy-independent inputs of every step of [start, end) (UTC)."""
    from aifactory.simulation.replay import period_steps

    if end <= start:
        raise SimulationError(f"the period is empty: {start.isoformat()} .. {end.isoformat()}")
    problems = config.check()
    if problems:
        raise SimulationError("; ".join(problems))
    times = period_steps(start.timestamp(), end.timestamp(), config.step_s)
    slots = config.slots if config.rebalance_interval_s < config.step_s else 1
    opts = demand or DemandOptions()
    warnings: list[str] = []
    region_names = {r.name for d in scenario.deployments for r in d.spec.demand.regions}
    bad = check_targets(events, scenario.module_names, region_names)
    if bad:
        raise SimulationError("; ".join(bad))
    for e in events:
        if not start.timestamp() <= e.epoch < end.timestamp():
            warnings.append(f"event outside the period, ignored: {e.describe()}")
    energy = energy_timeline(
        scenario.modules,
        carbon,
        times,
        step_s=config.step_s,
        slots=slots,
        poll_s=config.energy_poll_s,
        tolerance_s=config.signal_tolerance_s,
        min_readings=config.signal_tolerance_readings,
        max_age_s=config.energy_signal_max_age_s,
        zone_map=zone_map,
    )
    warnings += energy.warnings
    if opts.csv:
        series = from_csv(opts.csv, scenario.deployments, times)
    else:
        series = generate(
            scenario.deployments,
            times,
            step_s=config.step_s,
            cities=load_cities(),
            diurnal=opts.diurnal,
            burst=Burst.from_csv() if opts.burst else Burst.none(),
            seed=opts.seed,
            weights=opts.weights,
            radius_km=opts.radius_km,
            window_s=config.demand_window_s,
            populations=opts.populations,
            burst_of=scenario.tier_of,
        )
    warnings += series.warnings
    served: dict[str, np.ndarray] = {}
    wanted: dict[str, np.ndarray] = {}
    regions: dict[str, tuple[str, ...]] = {}
    for d in scenario.deployments:
        if d.ref not in series.regions:
            regions[d.ref] = ("",)
            wanted[d.ref] = np.full((len(times), 1), d.spec.replicas.without_demand(), np.int64)
            continue
        names = series.regions[d.ref]
        spike = np.stack([spike_factors(events, r, times, config.step_s) for r in names], axis=1)
        served[d.ref] = series.served[d.ref] * spike
        wanted[d.ref] = wanted_series(d, names, series.sized[d.ref] * spike)
        regions[d.ref] = names
    slot_times = (times[:, None] + np.arange(slots)[None, :] * (config.step_s / slots)).ravel()
    states = module_states(
        scenario.module_names,
        [m.spec.schedulable for m in scenario.modules],
        events,
        slot_times,
        toleration_s=config.toleration_s,
    )
    timeline = Timeline(
        step_times=times,
        step_s=config.step_s,
        slots=slots,
        energy=energy,
        states=states,
        regions=regions,
        wanted=wanted,
        served=served,
    )
    return Built(timeline, series, tuple(warnings))


__all__ = ["Built", "DemandOptions", "build_timeline", "load_scenario", "scenario_of"]
