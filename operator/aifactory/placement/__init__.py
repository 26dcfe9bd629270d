"""The placement engine: pure functions from fleet, deployments and policies to decisions.

No Kubernetes I/O happens here. The operator and `aifactoryctl place` both call this package:
`place_one` for one deployment against the fleet as it is (incremental mode, milliseconds on
10,000 modules), `place_fleet` to re-solve every deployment together (fleet-wide mode), and
`place_sequential` for the incremental mode applied deployment by deployment.
"""

from __future__ import annotations

from aifactory.placement.assignment import place_against, place_one, place_sequential
from aifactory.placement.binding import Binding, bind, policy_selects
from aifactory.placement.framework import Code, Status
from aifactory.placement.model import (
    CurrentAssignment,
    GpuPool,
    ModuleView,
    PlacementSettings,
    PolicyView,
    RegionDemand,
    Requirement,
    Selector,
    WorkloadView,
    replicas_per_region,
    split_replicas,
)
from aifactory.placement.optimize import lower_bound, place_fleet
from aifactory.placement.result import Assignment, Decision, FleetDecision, ModuleUsage
from aifactory.placement.state import FleetState

__all__ = [
    "Assignment",
    "Binding",
    "Code",
    "CurrentAssignment",
    "Decision",
    "FleetDecision",
    "FleetState",
    "GpuPool",
    "ModuleUsage",
    "ModuleView",
    "PlacementSettings",
    "PolicyView",
    "RegionDemand",
    "Requirement",
    "Selector",
    "Status",
    "WorkloadView",
    "bind",
    "lower_bound",
    "place_against",
    "place_fleet",
    "place_one",
    "place_sequential",
    "policy_selects",
    "replicas_per_region",
    "split_replicas",
]
