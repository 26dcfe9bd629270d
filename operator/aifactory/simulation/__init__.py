"""Replay a period through the operator's engine and rules, and ask what-if questions. Pure.

`aifactoryctl simulate` and `aifactoryctl what-if` are thin wrappers around this package:

* `inputs`: manifests -> `Scenario`; carbon series, demand and events -> `Timeline`;
* `series`, `demand`, `events`: the signals of the period (real carbon series by grid zone,
  generated or recorded demand, injected failures, cordons and spikes);
* `policies`: the compared policies (engine, latency-only, carbon-only, serve-in-country, static);
* `replay`: the step loop, the same engine calls and planner rules as the operator, hard rules
  checked at every step;
* `report`: JSON/CSV summaries and series, plots and the HTML report;
* `whatif`: the placement diff a change to the fleet would cause, without changing anything.
"""

from __future__ import annotations

from aifactory.simulation.inputs import Built, DemandOptions, build_timeline, load_scenario
from aifactory.simulation.policies import POLICIES, POLICY_NAMES, Policy
from aifactory.simulation.replay import (
    PolicyResult,
    Scenario,
    SimulationConfig,
    SimulationError,
    Timeline,
    simulate,
)

__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "Built",
    "DemandOptions",
    "Policy",
    "PolicyResult",
    "Scenario",
    "SimulationConfig",
    "SimulationError",
    "Timeline",
    "build_timeline",
    "load_scenario",
    "simulate",
]
