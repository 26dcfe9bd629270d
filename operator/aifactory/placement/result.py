"""What the engine decides: per deployment and for the whole fleet.

These are the only types the operator and the CLI read back. `to_dict` gives the JSON shape
that `aifactoryctl place -o json` promises (camelCase keys; extra keys are allowed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Assignment:
    """Replicas of one deployment on one module, and which demand regions they serve."""

    module: str
    replicas: int
    #: Region name -> replicas serving it. Empty for a deployment without demand regions.
    regions: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: GPU model -> GPUs these replicas take on the module.
    gpus: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: Region name -> estimated RTT in ms from that region to this module.
    latency_ms: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    carbon_intensity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the contract: module, replicas, regions)."""
        return {
            "module": self.module,
            "replicas": self.replicas,
            "regions": dict(self.regions),
            "gpus": dict(self.gpus),
            "latencyMs": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "carbonIntensity": round(self.carbon_intensity, 3),
        }


@dataclass(frozen=True, slots=True)
class Preemption:
    """Running replicas of a lower-priority deployment displaced to make room for this one."""

    deployment: str
    module: str
    replicas: int
    #: The displaced deployment's priority value.
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: deployment, module, replicas, priority."""
        return {
            "deployment": self.deployment,
            "module": self.module,
            "replicas": self.replicas,
            "priority": self.priority,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The placement of one deployment and why.

    `replicas` is how many were needed; `unplaced_replicas` how many found no module.
    `cost` is the brief's cost of this deployment (1000 per unplaced replica and per distinct
    module short of minModules included).
    """

    deployment: str
    replicas: int
    unplaced_replicas: int
    assignments: tuple[Assignment, ...]
    explanation: Mapping[str, str]
    cost: float
    #: Region -> worst RTT among the modules serving it (the SLO is per replica, so the worst
    #: one is what a user may see).
    latency_ms: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    #: Replica-weighted effective carbon intensity of the chosen modules (None: nothing placed).
    carbon_intensity: float | None = None
    #: kube-scheduler style summary: "2/7 modules are available: 3 outside ...".
    message: str = ""
    #: Region -> replicas that found no module.
    unplaced_regions: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    #: What bound Audit policies would have rejected on the chosen modules.
    audit: tuple[str, ...] = ()
    #: True when the running placement was kept by the hysteresis rule.
    kept_current: bool = False
    #: Why the current placement was kept or replaced (empty without one).
    stability: str = ""
    #: The deployment's priority value (PriorityClass), as placed.
    priority: int = 0
    #: Lower-priority replicas this decision displaces (incremental mode only): the operator
    #: removes them and re-places their deployments.
    preemptions: tuple[Preemption, ...] = ()

    @property
    def placed_replicas(self) -> int:
        """Replicas that found a module."""
        return self.replicas - self.unplaced_replicas

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the contract: deployment, replicas, unplacedReplicas, assignments,
        explanation)."""
        return {
            "deployment": self.deployment,
            "replicas": self.replicas,
            "unplacedReplicas": self.unplaced_replicas,
            "assignments": [a.to_dict() for a in self.assignments],
            "explanation": dict(self.explanation),
            "cost": round(self.cost, 6),
            "latencyMs": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "carbonIntensity": (
                None if self.carbon_intensity is None else round(self.carbon_intensity, 3)
            ),
            "message": self.message,
            "unplacedRegions": dict(self.unplaced_regions),
            "audit": list(self.audit),
            "keptCurrent": self.kept_current,
            "stability": self.stability,
            "priority": self.priority,
            "preemptions": [p.to_dict() for p in self.preemptions],
        }


@dataclass(frozen=True, slots=True)
class ModuleUsage:
    """GPUs of one module after the decision (used includes other tenants' GPUs)."""

    name: str
    gpus_total: int
    gpus_used: int

    @property
    def gpus_free(self) -> int:
        """GPUs left."""
        return self.gpus_total - self.gpus_used

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the contract: name, gpusUsed, gpusFree)."""
        return {
            "name": self.name,
            "gpusUsed": self.gpus_used,
            "gpusFree": self.gpus_free,
            "gpusTotal": self.gpus_total,
        }


@dataclass(frozen=True, slots=True)
class FleetDecision:
    """Decisions for every deployment, the fleet's GPU usage, and the total cost.

    `lower_bound` is a proven lower bound on the brief's total cost over every feasible
    placement of these deployments on this fleet (every feasible (deployment, region, module)
    pair, priorities ignored, so it also bounds the lexicographic optimum); None when no bound
    was computed (sequential mode, or the relaxation failed). `gap` = total_cost / lower_bound
    - 1: how far from optimal the answer can at most be.
    """

    placements: tuple[Decision, ...]
    modules: tuple[ModuleUsage, ...]
    total_cost: float
    #: The path taken, e.g. "lp+round", "lp+milp", "greedy", "sequential"; one entry per
    #: priority value joined by "," when they differ.
    solver: str = ""
    #: See the class docstring: a valid lower bound on the optimum, or None.
    lower_bound: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def gap(self) -> float | None:
        """total_cost / lower_bound - 1 (0 when both are 0); None without a bound."""
        if self.lower_bound is None:
            return None
        if self.lower_bound <= 0:
            return 0.0 if self.total_cost <= 1e-9 else None
        return max(0.0, self.total_cost / self.lower_bound - 1.0)

    def decision(self, deployment: str) -> Decision:
        """The decision for one "namespace/name"."""
        for d in self.placements:
            if d.deployment == deployment:
                return d
        raise KeyError(deployment)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of `aifactoryctl place -o json`."""
        return {
            "placements": [d.to_dict() for d in self.placements],
            "modules": [m.to_dict() for m in self.modules],
            "totalCost": round(self.total_cost, 6),
            "solver": self.solver,
            "lowerBound": None if self.lower_bound is None else round(self.lower_bound, 6),
            "gap": None if self.gap is None else round(self.gap, 6),
            "notes": list(self.notes),
        }
