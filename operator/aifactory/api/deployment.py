"""InferenceDeployment: a model server the operator keeps on the best set of modules."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from aifactory.api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    MAX_SHORT_STRING,
    SET_LIST,
    ApiModel,
    Condition,
    CountryCode,
    DataClassification,
    EnergySourceType,
    LabelSelector,
    NonEmptyLabelValue,
    NonEmptyName,
    ObjectName,
    Resource,
    StatusModel,
    cel_rule,
    find_condition,
    no_duplicates,
    unique,
    unique_by_rule,
)
from aifactory.api.env import EnvVar
from aifactory.api.limits import (
    MAX_ARG_LENGTH,
    MAX_ARGS,
    MAX_CARBON_INTENSITY,
    MAX_GPU_MEMORY_GIB,
    MAX_GPUS_PER_REPLICA,
    MAX_HEADROOM,
    MAX_LATENCY_MS,
    MAX_MIN_MODULES,
    MAX_REPLICAS,
    MAX_REQUESTS_PER_SECOND,
    MAX_THROUGHPUT_PER_REPLICA,
    MAX_WEIGHT,
    MIN_LATENCY_MS,
    MIN_THROUGHPUT_PER_REPLICA,
)

#: Messages shared by the CEL rules and the pydantic validators.
REPLICAS_EXCLUSIVE_MESSAGE = "replicas: set either fixed or min/max, not both"
REPLICAS_ORDER_MESSAGE = "replicas.min must be less than or equal to replicas.max"
THROUGHPUT_REQUIRED_MESSAGE = "throughputPerReplica is required when demand.regions is set"
REGION_NAMES_UNIQUE = "demand.regions[].name"
ENV_NAMES_UNIQUE = "model.env[].name"
PROMETHEUS_URL_MESSAGE = "demand.prometheus.url must start with http:// or https://"
PROMETHEUS_NEEDS_REGIONS_MESSAGE = (
    "demand.prometheus needs demand.regions: they give each region's location and country"
)
IMAGE_MESSAGE = "model.image must not contain whitespace"
MEASURED_NEEDS_MESSAGE = (
    "slo.measured needs slo.maxLatencyMs (the limit measured latency is held to) and "
    "demand.regions (the regions measurements are reported for)"
)
GPU_MODELS_UNIQUE = "resources.gpuModels"
ALLOWED_SOURCES_UNIQUE = "energy.allowedSources"
PLACEMENT_MODULES_UNIQUE = "placement.modules"
SOVEREIGNTY_POLICIES_UNIQUE = "sovereigntyPolicies"

#: A DNS subdomain name (RFC 1123), as Kubernetes requires of object names.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

#: Replicas when neither demand nor replicas.min/fixed says otherwise.
DEFAULT_MIN_REPLICAS = 1
#: Slack for float noise in ceil(), so 100 rps * 1.1 / 10 is 11 replicas, not 12.
_CEIL_EPSILON = 1e-9


class ModelServer(ApiModel):
    """The container that serves the model; the operator runs it as a Deployment per module."""

    name: NonEmptyLabelValue = Field(
        description=(
            "Model name, e.g. support-classifier; the member Deployment's "
            "app.kubernetes.io/name label, so a label value (at most 63 characters)."
        ),
    )
    image: str = Field(
        min_length=1,
        max_length=1024,
        description="Serving container image, e.g. registry.example/serve:1.2.",
        json_schema_extra={
            "x-kubernetes-validations": [cel_rule(r"!self.matches(r'\s')", IMAGE_MESSAGE)]
        },
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on.")
    args: list[Annotated[str, Field(max_length=MAX_ARG_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_ARGS,
        description="Container arguments (at most 256, each at most 4096 characters).",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Container environment variables; names must be unique.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @field_validator("env")
    @classmethod
    def _unique_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        unique((e.name for e in env), ENV_NAMES_UNIQUE)
        return env

    @field_validator("image")
    @classmethod
    def _image_without_whitespace(cls, image: str) -> str:
        if any(c.isspace() for c in image):
            raise ValueError(f"{IMAGE_MESSAGE}; got {image!r}")
        return image


class GpuRequirements(ApiModel):
    """What one replica needs from a GPU pool."""

    gpus_per_replica: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS_PER_REPLICA,
        description="GPUs one replica (one Pod, so one node) uses, 1..64.",
    )
    gpu_models: Annotated[list[NonEmptyName], no_duplicates(GPU_MODELS_UNIQUE)] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Accepted GPU models (e.g. H100, L40S), no repeats; empty accepts any.",
        json_schema_extra=SET_LIST,
    )
    min_gpu_memory_gib: int = Field(
        default=0,
        alias="minGpuMemoryGiB",
        ge=0,
        le=MAX_GPU_MEMORY_GIB,
        description="Minimum memory per GPU in GiB, 0..4096.",
    )

    def accepts(self, model: str, memory_gib: float) -> bool:
        """The one pool-eligibility rule: an accepted model (empty list: any) with enough memory
        per GPU. The engine applies the same rule vectorised (placement/filters/gpu.py)."""
        return (not self.gpu_models or model in self.gpu_models) and (
            memory_gib >= self.min_gpu_memory_gib
        )


class Replicas(ApiModel):
    """Either a range demand scales within, or a fixed count for workloads without demand."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!(has(self.fixed) && (has(self.min) || has(self.max)))",
                    REPLICAS_EXCLUSIVE_MESSAGE,
                ),
                cel_rule(
                    "!has(self.min) || !has(self.max) || self.min <= self.max",
                    REPLICAS_ORDER_MESSAGE,
                    field_path=".min",
                ),
            ]
        }
    )

    min: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description="Fewest replicas, whatever the demand (default 1), 0..10,000.",
    )
    max: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description="Most replicas, 0..10,000; unset = 10,000 (the API's limit).",
    )
    fixed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description="Exact replica count, 0..10,000; excludes min and max.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.fixed is not None and (self.min is not None or self.max is not None):
            raise ValueError(REPLICAS_EXCLUSIVE_MESSAGE)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{REPLICAS_ORDER_MESSAGE}; got min={self.min} max={self.max}")
        return self

    def clamp(self, wanted: int) -> int:
        """`wanted` bounded by min (default 1) and max (default MAX_REPLICAS); `fixed` overrides
        everything."""
        if self.fixed is not None:
            return self.fixed
        low = DEFAULT_MIN_REPLICAS if self.min is None else self.min
        high = MAX_REPLICAS if self.max is None else self.max
        return min(max(wanted, low), high)

    def without_demand(self) -> int:
        """Count for a deployment without demand regions: fixed, else min (default 1)."""
        if self.fixed is not None:
            return self.fixed
        return DEFAULT_MIN_REPLICAS if self.min is None else self.min


class DemandRegion(ApiModel):
    """A population of users: where requests come from and how many."""

    name: str = Field(
        min_length=1, max_length=MAX_SHORT_STRING, description="Region name, e.g. eu-west."
    )
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 country of the users.")
    latitude: float = Field(ge=-90, le=90, description="Latitude in degrees, -90..90.")
    longitude: float = Field(ge=-180, le=180, description="Longitude in degrees, -180..180.")
    requests_per_second: float = Field(
        ge=0,
        le=MAX_REQUESTS_PER_SECOND,
        description="Current request rate from this region, 0..1,000,000 requests/s.",
    )


def _check_http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{PROMETHEUS_URL_MESSAGE}; got {url!r}")
    return url


class PrometheusDemandSource(ApiModel):
    """A Prometheus instant query that gives live requests per second per demand region.

    Only the rates come from here: region locations and countries stay in `demand.regions`, so
    placement, latency and sovereignty still follow what is declared in Git.
    """

    url: Annotated[str, AfterValidator(_check_http_url)] = Field(
        min_length=1,
        max_length=2048,
        description=(
            "Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090; "
            "/api/v1/query is appended."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.startsWith('http://') || self.startsWith('https://')",
                    PROMETHEUS_URL_MESSAGE,
                )
            ]
        },
    )
    query: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "PromQL instant query returning requests per second with a region label, e.g. "
            "sum by (region) (rate(http_requests_total[1m])). Series of the same region are "
            "summed."
        ),
    )
    region_label: str = Field(
        default="region",
        min_length=1,
        max_length=MAX_SHORT_STRING,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="Label of the result series that holds the demand region name.",
    )
    timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=60,
        description="HTTP timeout of one query in seconds (also sent to Prometheus).",
    )


class Demand(ApiModel):
    """Where traffic comes from; drives replica counts and the latency term of placement."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.prometheus) || (has(self.regions) && size(self.regions) > 0)",
                    PROMETHEUS_NEEDS_REGIONS_MESSAGE,
                    field_path=".prometheus",
                )
            ]
        }
    )

    headroom: float = Field(
        default=0.0,
        ge=0,
        le=MAX_HEADROOM,
        description="Spare fraction on top of demand, 0..10, e.g. 0.2 for 20%.",
    )
    regions: list[DemandRegion] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Demand regions; names must be unique.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-validations": [unique_by_rule("name", REGION_NAMES_UNIQUE)],
        },
    )

    prometheus: PrometheusDemandSource | None = Field(
        default=None,
        description=(
            "Live requests per second per region from Prometheus; regions the query does not "
            "return keep their requestsPerSecond from regions."
        ),
    )

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, regions: list[DemandRegion]) -> list[DemandRegion]:
        unique((r.name for r in regions), REGION_NAMES_UNIQUE)
        return regions

    @model_validator(mode="after")
    def _prometheus_needs_regions(self) -> Self:
        if self.prometheus is not None and not self.regions:
            raise ValueError(PROMETHEUS_NEEDS_REGIONS_MESSAGE)
        return self


class LatencyUnit(StrEnum):
    """Unit of the values a measured-latency query returns."""

    MILLISECONDS = "Milliseconds"
    SECONDS = "Seconds"


class PrometheusLatencySource(ApiModel):
    """A Prometheus instant query that gives measured request latency per region and module.

    Typically the 95th percentile of a request-duration histogram, e.g.
    histogram_quantile(0.95, sum by (le, region, module) (rate(
    request_duration_seconds_bucket[5m]))) with unit Seconds. Series of one (region, module)
    pair are combined by taking the highest.
    """

    url: Annotated[str, AfterValidator(_check_http_url)] = Field(
        min_length=1,
        max_length=2048,
        description=(
            "Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090; "
            "/api/v1/query is appended."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.startsWith('http://') || self.startsWith('https://')",
                    PROMETHEUS_URL_MESSAGE.replace("demand.prometheus", "slo.measured.prometheus"),
                )
            ]
        },
    )
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL instant query returning latency per region and module, e.g. the "
        "p95 of a request-duration histogram by (region, module).",
    )
    region_label: str = Field(
        default="region",
        min_length=1,
        max_length=MAX_SHORT_STRING,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="Label of the result series that holds the demand region name.",
    )
    module_label: str = Field(
        default="module",
        min_length=1,
        max_length=MAX_SHORT_STRING,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="Label of the result series that holds the AIFactoryModule name.",
    )
    unit: LatencyUnit = Field(
        default=LatencyUnit.MILLISECONDS,
        description="Unit of the query's values: Milliseconds or Seconds.",
    )
    timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=60,
        description="HTTP timeout of one query in seconds (also sent to Prometheus).",
    )


class MeasuredLatency(ApiModel):
    """Where measured latency comes from (one source)."""

    prometheus: PrometheusLatencySource = Field(
        description="Measured latency per (region, module) from a Prometheus query."
    )


class Slo(ApiModel):
    """Service objectives placement must keep, not just prefer."""

    max_latency_ms: float | None = Field(
        default=None,
        ge=MIN_LATENCY_MS,
        le=MAX_LATENCY_MS,
        description=(
            "Maximum round-trip time in milliseconds (0.1..10,000) from a demand region to the "
            "module serving it; unset = no latency limit."
        ),
    )
    min_modules: int = Field(
        default=1,
        ge=1,
        le=MAX_MIN_MODULES,
        description=(
            "Spread replicas over at least this many distinct modules (for resilience), 1..1000."
        ),
    )
    measured: MeasuredLatency | None = Field(
        default=None,
        description=(
            "Measured latency per region and module. When a region's measured latency on a "
            "module stays above maxLatencyMs longer than the operator's signal tolerance, the "
            "deployment gets SLOBreached and placement treats that (region, module) pair as "
            "out of the SLO (replicas move, make-before-break, within the disruption budget)."
        ),
    )


class Objective(ApiModel):
    """Weights of the placement cost: how much latency and carbon matter to this workload."""

    latency_weight: float = Field(
        default=1.0,
        ge=0,
        le=MAX_WEIGHT,
        description="Weight of the latency term (RTT / maxLatencyMs), 0..1000.",
    )
    carbon_weight: float = Field(
        default=1.0,
        ge=0,
        le=MAX_WEIGHT,
        description="Weight of the carbon term (intensity * pue / 500), 0..1000.",
    )
    reliability_weight: float = Field(
        default=0.0,
        ge=0,
        le=MAX_WEIGHT,
        description="Weight of the reliability term ((1 - readyFraction) / 0.01: a module Ready "
        "99% of its reliability window costs 1.0 per replica), 0..1000; 0 leaves costs as "
        "they are.",
    )


class EnergyRequirements(ApiModel):
    """Hard energy constraints on the modules a replica may use."""

    min_renewable_share: float | None = Field(
        default=None, ge=0, le=1, description="Minimum renewable share of a module, 0..1."
    )
    max_carbon_intensity: float | None = Field(
        default=None,
        ge=0,
        le=MAX_CARBON_INTENSITY,
        description="Maximum carbon intensity of a module in gCO2e/kWh, 0..2000.",
    )
    allowed_sources: Annotated[list[EnergySourceType], no_duplicates(ALLOWED_SOURCES_UNIQUE)] = (
        Field(
            default_factory=list,
            max_length=len(EnergySourceType),
            description="Energy source types a module may draw from, no repeats; empty allows any.",
            json_schema_extra=SET_LIST,
        )
    )


class PlacementConstraints(ApiModel):
    """Restrict the candidate modules by name or label."""

    modules: Annotated[list[ObjectName], no_duplicates(PLACEMENT_MODULES_UNIQUE)] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Allow-list of module names, no repeats; empty allows every module.",
        json_schema_extra=SET_LIST,
    )
    module_selector: LabelSelector | None = Field(
        default=None, description="Label selector on modules; empty or unset selects every module."
    )


class InferenceDeploymentSpec(ApiModel):
    """What to serve, for whom, and the rules its placement must keep."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.demand) || !has(self.demand.regions) || "
                    "size(self.demand.regions) == 0 || has(self.throughputPerReplica)",
                    THROUGHPUT_REQUIRED_MESSAGE,
                ),
                cel_rule(
                    "!has(self.slo) || !has(self.slo.measured) || (has(self.slo.maxLatencyMs) "
                    "&& has(self.demand) && has(self.demand.regions) && "
                    "size(self.demand.regions) > 0)",
                    MEASURED_NEEDS_MESSAGE,
                    field_path=".slo.measured",
                ),
            ]
        }
    )

    model: ModelServer = Field(description="The model server container.")
    resources: GpuRequirements = Field(
        default_factory=GpuRequirements, description="GPUs one replica needs."
    )
    replicas: Replicas = Field(
        default_factory=Replicas, description="{min, max} scaled by demand, or {fixed: N}."
    )
    throughput_per_replica: float | None = Field(
        default=None,
        ge=MIN_THROUGHPUT_PER_REPLICA,
        le=MAX_THROUGHPUT_PER_REPLICA,
        description="Requests per second one replica serves, 0.01..1,000,000.",
    )
    demand: Demand = Field(default_factory=Demand, description="Demand per user region.")
    slo: Slo = Field(default_factory=Slo, description="Latency and spread objectives.")
    objective: Objective = Field(default_factory=Objective, description="Cost weights.")
    energy: EnergyRequirements = Field(
        default_factory=EnergyRequirements, description="Energy constraints on modules."
    )
    placement: PlacementConstraints = Field(
        default_factory=PlacementConstraints, description="Module allow-list and label selector."
    )
    data_classification: DataClassification = Field(
        default=DataClassification.INTERNAL,
        description="public, internal, confidential or restricted; policies select on it.",
    )
    sovereignty_policies: Annotated[
        list[ObjectName], no_duplicates(SOVEREIGNTY_POLICIES_UNIQUE)
    ] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description=(
            "Names of SovereigntyPolicies that apply on top of those bound by selectors; "
            "no repeats."
        ),
        json_schema_extra=SET_LIST,
    )
    min_reliability: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Minimum fraction of its reliability window a module must have been Ready "
            "(status.reliability.readyFraction), 0..1: modules below it take no replicas of "
            "this deployment, and running ones leave them (make-before-break)."
        ),
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=MAX_NAME_LENGTH,
        pattern=DNS_SUBDOMAIN,
        description=(
            "Name of a scheduling.k8s.io/v1 PriorityClass on the hub. Placement serves higher "
            "values first; a class with preemptionPolicy Never never displaces running "
            "lower-priority replicas. Unset: the globalDefault class, else 0."
        ),
    )

    @model_validator(mode="after")
    def _throughput_with_demand(self) -> Self:
        if self.demand.regions and self.throughput_per_replica is None:
            raise ValueError(THROUGHPUT_REQUIRED_MESSAGE)
        if self.slo.measured is not None and (
            self.slo.max_latency_ms is None or not self.demand.regions
        ):
            raise ValueError(MEASURED_NEEDS_MESSAGE)
        return self

    def replicas_per_region(self) -> dict[str, int]:
        """n_r = ceil(requestsPerSecond_r * (1 + headroom) / throughputPerReplica), per region."""
        if not self.demand.regions:
            return {}
        assert self.throughput_per_replica is not None  # guaranteed by the validator
        factor = (1.0 + self.demand.headroom) / self.throughput_per_replica
        return {
            r.name: max(math.ceil(r.requests_per_second * factor - _CEIL_EPSILON), 0)
            for r in self.demand.regions
        }

    def guaranteed_replicas(self) -> int:
        """Replicas whose absence costs the guaranteed penalty: fixed, else min (default 1),
        capped at the total needed."""
        floor = self.replicas.fixed if self.replicas.fixed is not None else self.replicas.min
        floor = DEFAULT_MIN_REPLICAS if floor is None else floor
        return min(floor, self.replicas_needed())

    def replicas_needed(self) -> int:
        """Total replicas: clamp(sum n_r, min, max) with demand, else fixed (or min).

        `fixed` wins even when demand regions are given; they then only steer where the fixed
        replicas go.
        """
        if not self.demand.regions:
            return self.replicas.without_demand()
        return self.replicas.clamp(sum(self.replicas_per_region().values()))


class ModulePlacement(StatusModel):
    """Replicas of this deployment on one module, and which regions they serve."""

    module: str = Field(description="AIFactoryModule name.")
    replicas: int = Field(default=0, ge=0, description="Replicas placed on the module.")
    ready_replicas: int = Field(default=0, ge=0, description="Of those, how many are ready.")
    regions: dict[str, int] = Field(
        default_factory=dict, description="Demand region name -> replicas serving it."
    )
    gpus: dict[str, int] | None = Field(
        default=None,
        description="GPU model -> GPUs these replicas hold: as the member reports for running "
        "pods, as the engine chose for pods not scheduled yet.",
    )


class CarbonStatus(StatusModel):
    """What the placement emits now and what a carbon-blind placement would (BRIEF
    "Accounting"): GPUs x board power x PUE x carbon intensity of the modules used."""

    grams_per_hour: float = Field(
        default=0.0, ge=0, description="gCO2e per hour of the current placement."
    )
    latency_only_grams_per_hour: float = Field(
        default=0.0,
        ge=0,
        description="gCO2e per hour of the placement a latency-only solve (carbonWeight 0) "
        "would make on the same fleet now.",
    )
    mean_rtt_ms: float | None = Field(
        default=None, ge=0, description="Replica-weighted mean RTT of the current placement."
    )
    latency_only_mean_rtt_ms: float | None = Field(
        default=None, ge=0, description="The same for the latency-only placement."
    )


class HeldReplicas(StatusModel):
    """Replicas that run on a module they should leave, and why they are still there."""

    module: str = Field(description="AIFactoryModule name.")
    replicas: int = Field(default=0, ge=0, description="Replicas still running there.")
    region: str | None = Field(default=None, description="Demand region they serve, if any.")
    reason: str = Field(
        default="",
        description="NoDestination (no other module can take them: they stay), "
        "WaitingForBudget (the disruption budget allows more moves later), "
        "WaitingForStep (the previous move is not Ready yet) or Handover (they serve until "
        "their replacements are Ready).",
    )


class RouteTarget(StatusModel):
    """One module a region's traffic is sent to."""

    module: str = Field(description="AIFactoryModule name.")
    weight: float = Field(ge=0, description="Share of the region's traffic, 0..1.")


class RegionRouting(StatusModel):
    """How one demand region's traffic is split across modules."""

    region: str = Field(description="Demand region name.")
    modules: list[RouteTarget] = Field(default_factory=list, description="Weighted targets.")


class EffectiveDemand(StatusModel):
    """The demand an InferenceRouter derives for this deployment (one of its tiers): the
    router's requests per region x the tier's share. Placement uses it instead of spec.demand,
    which stays as the user wrote it."""

    router: str = Field(description="InferenceRouter (same namespace) whose tier this is.")
    share: float = Field(ge=0, description="Fraction of the router's requests, 0..1.")
    headroom: float = Field(
        ge=0, description="Headroom applied: this deployment's own, else the router's."
    )
    requests_per_second: dict[str, float] = Field(
        default_factory=dict, description="Demand region name -> requests per second."
    )


class Unsatisfied(StatusModel):
    """Replicas that could not be placed anywhere, and why."""

    replicas: int = Field(default=0, ge=0, description="Replicas without a module.")
    reason: str = Field(default="", description="Aggregated reasons, e.g. per module counts.")


class InferenceDeploymentStatus(StatusModel):
    """Where the replicas are, how traffic is routed, and what could not be satisfied."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Placed, Ready, Compliant and Degraded conditions.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    replicas: int | None = Field(default=None, ge=0, description="Desired replicas in total.")
    ready_replicas: int | None = Field(default=None, ge=0, description="Ready replicas in total.")
    placements: list[ModulePlacement] = Field(
        default_factory=list, description="Replicas per module."
    )
    routing: list[RegionRouting] = Field(
        default_factory=list, description="Traffic split per demand region."
    )
    unsatisfied: Unsatisfied | None = Field(
        default=None, description="Replicas that could not be placed and why."
    )
    carbon: CarbonStatus | None = Field(
        default=None,
        description="Emissions of the current placement and of a carbon-blind one, and the "
        "latency paid for the difference.",
    )
    held_replicas: list[HeldReplicas] | None = Field(
        default=None,
        description="Replicas still on modules they should leave (drain, a broken energy "
        "rule, a rebalance), and why: make-before-break never removes them before their "
        "replacements are Ready, and never when no other module can take them.",
    )
    last_rebalance_time: datetime | None = Field(
        default=None, description="When the placement last changed."
    )
    last_moves: list[str] | None = Field(
        default=None,
        description="Replica moves of the last rebalancing step, e.g. '2 serving eu-west: "
        "frankfurt -> oslo'.",
    )
    explanation: dict[str, str] | None = Field(
        default=None,
        description="Per module, why it was chosen or rejected (at most 64 modules: the chosen "
        "ones first, then the rest by name); `aifactoryctl explain` prints it.",
    )
    observed_demand: dict[str, float] | None = Field(
        default=None,
        description="Requests per second per region from spec.demand.prometheus, as last read "
        "successfully; kept while the source is unreachable.",
    )
    demand_updated_at: datetime | None = Field(
        default=None, description="When observedDemand was last read from the live source."
    )
    effective_demand: EffectiveDemand | None = Field(
        default=None,
        description="Set while an InferenceRouter names this deployment as a tier: the demand "
        "placement used instead of spec.demand (router demand x share per region).",
    )
    cost: float | None = Field(
        default=None, description="Placement cost of the current placement (lower is better)."
    )
    module_count: int | None = Field(
        default=None, ge=0, description="Modules with at least one replica (printer column)."
    )
    replicas_summary: str | None = Field(
        default=None, description="readyReplicas/replicas, e.g. 3/5 (printer column)."
    )

    def summarized(self) -> InferenceDeploymentStatus:
        """This status with moduleCount and replicasSummary recomputed."""
        modules = sum(1 for p in self.placements if p.replicas > 0)
        summary = f"{self.ready_replicas or 0}/{self.replicas or 0}"
        return self.model_copy(update={"module_count": modules, "replicas_summary": summary})


class InferenceDeployment(Resource):
    """A model to serve across the fleet, near its users, on clean energy, within the law.

    Namespaced because it belongs to the team that owns the model; the namespace's labels bind
    sovereignty policies to it.
    """

    KIND: ClassVar[str] = "InferenceDeployment"
    PLURAL: ClassVar[str] = "inferencedeployments"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("infd",)
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["InferenceDeployment"] = "InferenceDeployment"
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus | None = None

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def ref(self) -> str:
        """ "namespace/name", the key policies and the engine use for a deployment."""
        return f"{self.namespace}/{self.metadata.name}"

    def replicas_needed(self) -> int:
        return self.spec.replicas_needed()

    def replicas_per_region(self) -> dict[str, int]:
        return self.spec.replicas_per_region()

    def condition(self, type_: str) -> Condition | None:
        return find_condition(self.status.conditions, type_) if self.status else None


__all__ = [
    "CarbonStatus",
    "Demand",
    "DemandRegion",
    "EffectiveDemand",
    "EnergyRequirements",
    "EnvVar",
    "GpuRequirements",
    "HeldReplicas",
    "InferenceDeployment",
    "InferenceDeploymentSpec",
    "InferenceDeploymentStatus",
    "LatencyUnit",
    "MeasuredLatency",
    "ModelServer",
    "ModulePlacement",
    "Objective",
    "PlacementConstraints",
    "PrometheusDemandSource",
    "PrometheusLatencySource",
    "RegionRouting",
    "Replicas",
    "RouteTarget",
    "Slo",
    "Unsatisfied",
]
