"""The placement engine's own inputs and settings: plain frozen dataclasses.

The engine never sees pydantic models or Kubernetes objects. Keeping its inputs to a few small
value types means it can be driven by the operator, the offline CLI, benchmarks and property
tests alike, and that nothing in it can block on I/O. `from_api` converts the CRD models.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from aifactory.api.jurisdictions import tags_of

#: Energy sources counted as renewable by the brief.
RENEWABLE_SOURCES: frozenset[str] = frozenset({"solar", "wind", "hydro", "geothermal"})

#: Every energy source type the brief names.
SOURCE_TYPES: tuple[str, ...] = (
    "solar",
    "wind",
    "hydro",
    "geothermal",
    "nuclear",
    "grid",
    "gas",
    "diesel",
    "battery",
)

Enforcement = Literal["Enforce", "Audit"]
Residency = Literal["None", "SameJurisdictionAsDemand"]
#: `preemptionPolicy` of a Kubernetes PriorityClass (scheduling.k8s.io/v1).
PreemptionPolicy = Literal["PreemptLowerPriority", "Never"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _frozen_map(values: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy, so a view cannot change under the engine's caches."""
    return MappingProxyType(dict(values)) if values else _EMPTY


@dataclass(frozen=True, slots=True)
class PlacementSettings:
    """Every constant of the brief's placement model, configurable in one place.

    The defaults are the brief's. Solver knobs bound the fleet-wide optimiser's work so a
    reconcile cycle stays predictable on a busy control plane.
    """

    earth_radius_km: float = 6371.0
    route_factor: float = 1.6
    fibre_km_per_ms: float = 204.19
    rtt_overhead_ms: float = 1.0
    carbon_normaliser: float = 500.0
    latency_normaliser_ms: float = 100.0
    #: Unreliability (1 - readyFraction) that costs 1.0 per replica at reliabilityWeight 1.
    reliability_normaliser: float = 0.01
    #: Cost of an unplaced replica above the deployment's guaranteed count (replicas.min).
    unplaced_cost: float = 1000.0
    #: Cost of an unplaced replica that leaves its deployment short of its guaranteed count
    #: (replicas.min, or fixed): higher, so under scarcity every deployment first gets its
    #: minimum (BRIEF "Placement semantics").
    guaranteed_unplaced_cost: float = 10_000.0
    spread_cost: float = 1000.0
    hysteresis: float = 0.10
    #: Cost bonus per replica that stays where it runs now: breaks ties towards no movement.
    stickiness: float = 0.01
    #: Fleet-wide optimiser: the cheapest modules per (deployment, region) that start the column
    #: generation; the LP's prices add any other feasible module that can lower the cost.
    candidates_per_region: int = 8
    #: "lp": column generation, rounding and repair (see optimize.py); "greedy": the greedy
    #: solver alone (the fallback when HiGHS fails; cheaper, no bound).
    fleet_solver: Literal["lp", "greedy"] = "lp"
    #: Column generation: at most this many LP solves per priority value, and at most this many
    #: new modules per (deployment, region) and round.
    lp_rounds: int = 12
    lp_columns_per_round: int = 8
    #: Stop column generation once the LP is within this fraction of the Lagrangian bound
    #: (without exact spread: once a round lowers the LP by less than this fraction).
    lp_gap_target: float = 0.002
    #: Up to this many demand rows ((deployment, region) pairs) the LP models minModules >= 2
    #: exactly; above, it leaves spread to the bounds and the repair (see
    #: `Relaxation.exact_spread`).
    lp_exact_spread_max_rows: int = 4_000
    #: Safety net for one LP solve (seconds); the round cap is what bounds the work normally.
    lp_time_limit_s: float = 120.0
    #: Up to this many columns the rounded LP answer is polished by a MILP over the generated
    #: columns (HiGHS, node and time limits); 0 never runs it.
    milp_max_variables: int = 10_000
    milp_time_limit_s: float = 5.0
    #: Branch-and-bound node cap: unlike the time limit, it stops at the same point every run.
    milp_node_limit: int = 2_000
    milp_rel_gap: float = 1e-3
    #: Local-improvement passes of the greedy solver.
    improve_passes: int = 2
    #: Explain every module when the fleet has at most this many; else the chosen, the best
    #: alternatives and aggregated counts (a string per module per deployment costs time).
    explain_all_up_to: int = 200
    explain_alternatives: int = 3


def unplaced_penalty(
    settings: PlacementSettings, total: int, guaranteed: int, placed: int
) -> float:
    """The brief's cost of the replicas a deployment leaves unplaced.

    `unplaced_cost` per missing replica, plus the difference to `guaranteed_unplaced_cost` for
    each one that leaves the deployment below its guaranteed count: with 1000 / 10,000, a
    deployment of 5 with min 2 and 1 placed pays 3 * 1000 + 1 * 9000.
    """
    missing = max(0, total - placed)
    below = max(0, min(guaranteed, total) - placed)
    extra = settings.guaranteed_unplaced_cost - settings.unplaced_cost
    return settings.unplaced_cost * missing + extra * below


@dataclass(frozen=True, slots=True)
class GpuPool:
    """One GPU pool of a module. `allocated` counts GPUs held by workloads the engine is not
    placing in this call (other tenants, or deployments already decided in incremental mode)."""

    model: str
    count: int
    memory_gib: float
    power_w: float
    allocated: int = 0

    @property
    def free(self) -> int:
        """GPUs the engine may hand out."""
        return max(0, self.count - self.allocated)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: NotIn and DoesNotExist match when the key is absent."""
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class Selector:
    """A Kubernetes label selector; hashable so the engine can cache per distinct selector."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @classmethod
    def of(
        cls,
        match_labels: Mapping[str, str] | None = None,
        match_expressions: Iterable[Requirement] = (),
    ) -> Selector:
        """Build from the usual dict form; sorted so equal selectors hash equal."""
        return cls(tuple(sorted((match_labels or {}).items())), tuple(match_expressions))

    @property
    def empty(self) -> bool:
        """An empty selector matches everything, as in Kubernetes."""
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """All matchLabels and all matchExpressions must hold."""
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )


@dataclass(frozen=True, slots=True)
class ModuleView:
    """What the engine needs to know about one AI factory module, status already folded in."""

    name: str
    country: str
    latitude: float
    longitude: float
    pools: tuple[GpuPool, ...]
    power_budget_kw: float
    pue: float = 1.0
    #: Effective carbon intensity: the live status value when present, else the spec default.
    carbon_intensity: float = 0.0
    renewable_share: float = 0.0
    sources: frozenset[str] = frozenset()
    #: Every jurisdiction token the module answers to (country, its groups, extra tags).
    jurisdictions: frozenset[str] = frozenset()
    certifications: frozenset[str] = frozenset()
    operator_country: str | None = None
    air_gapped: bool = False
    ready: bool = True
    #: False = cordoned (or NotReady within tolerationSeconds): running replicas may stay,
    #: nothing new is placed.
    schedulable: bool = True
    #: Asked to give up every replica (`aifactoryctl drain`): running replicas break a rule and
    #: are re-placed, like NotReady, but the module stays usable while they move.
    draining: bool = False
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    #: Fraction of the reliability window the module was Ready (status.reliability); 1.0
    #: when nothing was measured.
    ready_fraction: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        # The country and its groups always count, whatever extra tags were given.
        object.__setattr__(self, "jurisdictions", tags_of(self.country, self.jurisdictions))


@dataclass(frozen=True, slots=True)
class RegionDemand:
    """Replicas a deployment needs for one demand region, already sized by the brief's rule."""

    name: str
    latitude: float
    longitude: float
    replicas: int
    country: str | None = None


@dataclass(frozen=True, slots=True)
class CurrentAssignment:
    """Where replicas of a deployment run now: the input of stickiness and hysteresis."""

    module: str
    replicas: int
    regions: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: GPU model -> replicas running on that pool, as the member reports them (empty when
    #: unknown). Kept replicas are accounted on these pools, not on the engine's guess.
    pools: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", MappingProxyType(dict(self.regions)))
        object.__setattr__(self, "pools", MappingProxyType(dict(self.pools)))


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """One InferenceDeployment as the engine sees it.

    `replicas` is the total to place. With demand regions, `regions` splits it (their replicas
    sum to `replicas`); without, the replicas serve no region and carry no latency term.
    """

    key: str
    replicas: int
    gpus_per_replica: int = 1
    gpu_models: frozenset[str] = frozenset()
    min_gpu_memory_gib: float = 0.0
    regions: tuple[RegionDemand, ...] = ()
    max_latency_ms: float | None = None
    #: slo.minModules; 0 when unset (no spread requirement and no spread cost).
    min_modules: int = 0
    latency_weight: float = 1.0
    carbon_weight: float = 1.0
    min_renewable_share: float | None = None
    max_carbon_intensity: float | None = None
    allowed_sources: frozenset[str] = frozenset()
    placement_modules: frozenset[str] = frozenset()
    module_selector: Selector | None = None
    data_classification: str | None = None
    sovereignty_policies: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    namespace_labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    current: tuple[CurrentAssignment, ...] = ()
    #: Guaranteed replicas (replicas.min, or fixed): an unplaced replica below this count costs
    #: `guaranteed_unplaced_cost` instead of `unplaced_cost`. Clamped to `replicas`.
    min_replicas: int = 0
    #: PriorityClass value: fleet-wide placement serves higher values first (lexicographic).
    priority: int = 0
    #: "Never": this deployment never displaces running lower-priority replicas.
    preemption_policy: PreemptionPolicy = "PreemptLowerPriority"
    #: spec.minReliability: modules Ready less of their window than this are filtered out.
    min_reliability: float | None = None
    #: objective.reliabilityWeight: weight of the reliability score term (0: no term).
    reliability_weight: float = 0.0
    #: (region, module) pairs whose measured latency broke the SLO (spec.slo.measured): out of
    #: the SLO for that region, like a pair beyond maxLatencyMs.
    slo_excluded: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        object.__setattr__(self, "namespace_labels", _frozen_map(self.namespace_labels))
        if self.regions and sum(r.replicas for r in self.regions) != self.replicas:
            raise ValueError(f"{self.key}: region replicas must sum to replicas={self.replicas}")
        if self.min_replicas < 0:
            raise ValueError(f"{self.key}: min_replicas must be >= 0")

    def with_current(self, current: tuple[CurrentAssignment, ...]) -> WorkloadView:
        """This deployment with another running placement: `dataclasses.replace` without
        re-validating what did not change (the simulator does this ~100,000 times a year)."""
        out = object.__new__(WorkloadView)
        for name in _WORKLOAD_FIELDS:
            object.__setattr__(out, name, getattr(self, name))
        object.__setattr__(out, "current", tuple(current))
        return out

    @property
    def guaranteed(self) -> int:
        """Replicas whose absence costs `guaranteed_unplaced_cost`: min(min_replicas, replicas)."""
        return min(self.min_replicas, self.replicas)

    @property
    def namespace(self) -> str:
        """The namespace part of the key (empty for a key without one)."""
        return self.key.split("/", 1)[0] if "/" in self.key else ""


#: WorkloadView's fields, for `with_current` (a copy.copy of a slots dataclass costs as much as
#: `dataclasses.replace`).
_WORKLOAD_FIELDS = tuple(f.name for f in dataclasses.fields(WorkloadView))


@dataclass(frozen=True, slots=True)
class PolicyView:
    """One SovereigntyPolicy. Rules of every bound policy intersect."""

    name: str
    enforcement: Enforcement = "Enforce"
    namespace_selector: Selector | None = None
    deployment_selector: Selector | None = None
    data_classifications: frozenset[str] = frozenset()
    allowed_jurisdictions: tuple[str, ...] = ()
    denied_countries: tuple[str, ...] = ()
    required_certifications: tuple[str, ...] = ()
    operator_countries: tuple[str, ...] = ()
    denied_operator_countries: tuple[str, ...] = ()
    require_air_gapped: bool = False
    data_residency: Residency = "None"


def split_replicas(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Share `total` replicas among regions in proportion to `weights` (largest remainder).

    Used when the min/max clamp changes the sum of per-region needs: the regions keep their
    proportions. Ties go to the region that sorts first, so the split is deterministic.
    """
    names = sorted(weights)
    if not names:
        return {}
    wsum = sum(max(0.0, weights[n]) for n in names)
    if wsum <= 0:
        quotas = {n: total / len(names) for n in names}
    else:
        quotas = {n: total * max(0.0, weights[n]) / wsum for n in names}
    out = {n: math.floor(quotas[n]) for n in names}
    rest = total - sum(out.values())
    order = sorted(names, key=lambda n: (-(quotas[n] - out[n]), n))
    for n in order[:rest]:
        out[n] += 1
    return out


def replicas_per_region(
    requests_per_second: Mapping[str, float],
    *,
    throughput_per_replica: float,
    headroom: float = 0.0,
    min_replicas: int = 0,
    max_replicas: int | None = None,
) -> dict[str, int]:
    """The brief's sizing rule: n_r = ceil(rps_r * (1 + headroom) / throughput), total clamped
    to [min, max] and re-split in proportion when the clamp bites."""
    need = {
        name: math.ceil(max(0.0, rps) * (1.0 + headroom) / throughput_per_replica - 1e-9)
        for name, rps in requests_per_second.items()
    }
    total = sum(need.values())
    clamped = max(total, min_replicas)
    if max_replicas is not None:
        clamped = min(clamped, max_replicas)
    if clamped == total:
        return need
    weights = {n: float(v) for n, v in need.items()} if total > 0 else dict(requests_per_second)
    return split_replicas(clamped, weights)
