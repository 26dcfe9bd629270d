"""AIFactoryModule: one factory-built GPU site the fleet can place inference on."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Annotated, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from aifactory.api.carbon_signal import CarbonSignal, EmissionFactorType, SignalType
from aifactory.api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    LABEL_MAP_SCHEMA,
    MAX_SHORT_STRING,
    RENEWABLE_SOURCES,
    SET_LIST,
    ApiModel,
    Condition,
    ConditionStatus,
    CountryCode,
    EnergySourceType,
    JsonDict,
    JurisdictionToken,
    LabelMap,
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
from aifactory.api.jurisdictions import is_subdivision, subdivision_name, subdivisions
from aifactory.api.limits import (
    MAX_CARBON_INTENSITY,
    MAX_GPU_MEMORY_GIB,
    MAX_GPU_POWER_W,
    MAX_GPUS_PER_POOL,
    MAX_POWER_BUDGET_KW,
    MAX_PUE,
)

#: Messages shared by the CEL rules and the pydantic validators.
SHARES_MESSAGE = "energy.sources[].share must sum to 1 (within 0.001)"
CLUSTER_MESSAGE = "cluster must set exactly one of kubeconfigSecretRef or nodeSelector"
GPU_MODELS_UNIQUE = "capacity.gpus[].model"
SCHEDULE_HOURS_MESSAGE = "energy.schedule[].fromHour must be less than toHour"
SCHEDULE_OVERLAP_MESSAGE = "energy.schedule entries must not overlap"
REGION_MESSAGE = (
    "location.region must be an ISO 3166-2 subdivision code of location.country, "
    "e.g. NO-03 (Oslo) when country is NO"
)
JURISDICTIONS_UNIQUE = "location.jurisdictions"
NODE_SELECTOR_EMPTY_MESSAGE = "cluster.nodeSelector must name at least one label"
CERTIFICATIONS_UNIQUE = "security.certifications"

SHARE_TOLERANCE = 0.001
MAX_GPU_POOLS = 32
MAX_ENERGY_SOURCES = 16
#: One entry per hour at most; also bounds the quadratic overlap rule's CEL cost.
MAX_SCHEDULE_ENTRIES = 24


def _region_rules(schema: JsonDict) -> None:
    """CEL: location.region is one of the country's ISO 3166-2 codes.

    The codes (about 5,000, 30 KB) are one string searched for '|CODE|': a substring search is
    cheap in CEL's cost model, where a map or list literal of that size is not. The table is
    built when the CRD is generated, not at import.
    """
    codes = "|" + "|".join(sorted(c for cs in subdivisions().values() for c in cs)) + "|"
    rule = (
        "!has(self.region) || (self.region.matches(r'^[A-Z]{2}-[A-Z0-9]{1,3}$') && "
        f"self.region.startsWith(self.country + '-') && '{codes}'.contains('|' + self.region + "
        "'|'))"
    )
    schema.setdefault("x-kubernetes-validations", []).append(
        cel_rule(rule, REGION_MESSAGE, field_path=".region")
    )


class Location(ApiModel):
    """Where the module physically is: feeds latency (RTT) and sovereignty decisions."""

    model_config = ConfigDict(json_schema_extra=_region_rules)

    country: CountryCode = Field(
        description='ISO 3166-1 alpha-2 code of the host country. Quote "NO" (Norway) in YAML.'
    )
    region: str | None = Field(
        default=None,
        min_length=4,
        max_length=6,
        description=(
            "ISO 3166-2 subdivision of the country the module is in, e.g. NO-03 (Oslo), IS-1 "
            "(Capital Region), US-TX; informational."
        ),
    )
    latitude: float = Field(ge=-90, le=90, description="Latitude in degrees, -90..90.")
    longitude: float = Field(ge=-180, le=180, description="Longitude in degrees, -180..180.")
    jurisdictions: Annotated[list[JurisdictionToken], no_duplicates(JURISDICTIONS_UNIQUE)] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Extra jurisdiction tags (country codes or EU, EEA, FIVE_EYES). Group membership of "
            "the country counts automatically; list only what it does not imply. No repeats."
        ),
        json_schema_extra=SET_LIST,
    )

    @model_validator(mode="after")
    def _region_in_country(self) -> Self:
        region = self.region
        if region is None or is_subdivision(region, self.country):
            return self
        name = subdivision_name(region)
        why = (
            f"it is {name} in {region[:2]}"
            if name is not None
            else f"no ISO 3166-2 subdivision of {self.country} has that code"
        )
        raise ValueError(f"{REGION_MESSAGE}; got {region!r}: {why}")


class EnergySource(ApiModel):
    """One part of the module's energy mix."""

    type: EnergySourceType = Field(
        description="solar, wind, hydro, geothermal, nuclear, grid, gas, diesel or battery."
    )
    share: float = Field(ge=0, le=1, description="Fraction of energy from this source, 0..1.")


class EnergyScheduleEntry(ApiModel):
    """Energy during a daily window of local hours [fromHour, toHour), e.g. solar daytime.

    Windows do not wrap midnight: a night from 18 to 08 is two entries, 18-24 and 0-8, which
    keeps the rules simple enough for CEL and for people reading the object.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("self.fromHour < self.toHour", SCHEDULE_HOURS_MESSAGE)
            ]
        }
    )

    from_hour: int = Field(ge=0, le=23, description="First local hour of the window, 0..23.")
    to_hour: int = Field(ge=1, le=24, description="Local hour the window ends (exclusive), 1..24.")
    carbon_intensity: float = Field(
        ge=0,
        le=MAX_CARBON_INTENSITY,
        description="Carbon intensity in the window, gCO2e/kWh, 0..2000.",
    )
    renewable_share: float = Field(
        ge=0, le=1, description="Renewable share of the energy in the window, 0..1."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.from_hour >= self.to_hour:
            raise ValueError(
                f"{SCHEDULE_HOURS_MESSAGE}; got fromHour={self.from_hour} toHour={self.to_hour}"
            )
        return self

    def covers(self, hour: int) -> bool:
        """True when local `hour` (0..23) falls in [fromHour, toHour)."""
        return self.from_hour <= hour < self.to_hour

    def overlaps(self, other: EnergyScheduleEntry) -> bool:
        return self.from_hour < other.to_hour and other.from_hour < self.to_hour


class ModuleEnergy(ApiModel):
    """Declared energy mix and power envelope; live signals may override intensity in status."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    f"self.sources.map(s, s.share).sum() >= {1 - SHARE_TOLERANCE} && "
                    f"self.sources.map(s, s.share).sum() <= {1 + SHARE_TOLERANCE}",
                    SHARES_MESSAGE,
                    field_path=".sources",
                )
            ]
        }
    )

    sources: list[EnergySource] = Field(
        min_length=1,
        max_length=MAX_ENERGY_SOURCES,
        description="Energy mix; the shares must sum to 1 (within 0.001).",
    )
    carbon_intensity: float = Field(
        ge=0,
        le=MAX_CARBON_INTENSITY,
        description=(
            "Default carbon intensity in gCO2e/kWh, 0..2000; live signals override it in status."
        ),
    )
    power_budget_kw: float = Field(
        alias="powerBudgetKW",
        ge=0,
        le=MAX_POWER_BUDGET_KW,
        description=(
            "Total facility power available to GPUs in kW (0..1,000,000), including PUE "
            "overhead: the sum of GPUs * powerW * pue of placed replicas must stay within "
            "powerBudgetKW * 1000."
        ),
    )
    pue: float = Field(
        default=1.0,
        ge=1,
        le=MAX_PUE,
        description="Power usage effectiveness (facility / IT power), 1..5.",
    )
    schedule: list[EnergyScheduleEntry] = Field(
        default_factory=list,
        max_length=MAX_SCHEDULE_ENTRIES,
        description=(
            "Carbon intensity and renewable share by local hour of day (e.g. solar: low carbon "
            "by day); hours no entry covers use carbonIntensity and the sources' renewable "
            "share. Entries must not overlap."
        ),
        json_schema_extra={
            # Every entry overlaps exactly one entry: itself (fromHour < toHour holds).
            "x-kubernetes-validations": [
                cel_rule(
                    "self.all(a, self.exists_one(b, "
                    "a.fromHour < b.toHour && b.fromHour < a.toHour))",
                    SCHEDULE_OVERLAP_MESSAGE,
                )
            ]
        },
    )
    utc_offset_hours: float = Field(
        default=0.0,
        ge=-12,
        le=14,
        description=(
            "Offset of the module's local time from UTC in hours (-12..14, e.g. 5.5), for "
            "schedule hours. Fixed: adjust it yourself for daylight saving time."
        ),
    )
    signal: CarbonSignal | None = Field(
        default=None,
        description=(
            "Live carbon-intensity feed (Electricity Maps, WattTime, GB National Grid ESO or a "
            "CSV series) whose fresh readings override carbonIntensity in status.energy."
        ),
    )

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> Self:
        total = sum(s.share for s in self.sources)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"{SHARES_MESSAGE}; got {total:g}")
        return self

    @field_validator("schedule")
    @classmethod
    def _no_overlap(cls, schedule: list[EnergyScheduleEntry]) -> list[EnergyScheduleEntry]:
        ordered = sorted(schedule, key=lambda e: e.from_hour)
        for before, after in pairwise(ordered):
            if before.overlaps(after):
                raise ValueError(
                    f"{SCHEDULE_OVERLAP_MESSAGE}; {before.from_hour}-{before.to_hour} and "
                    f"{after.from_hour}-{after.to_hour} overlap"
                )
        return schedule

    def renewable_share(self) -> float:
        """Share of solar, wind, hydro and geothermal in the mix."""
        return sum(s.share for s in self.sources if s.type in RENEWABLE_SOURCES)


class GpuPool(ApiModel):
    """A set of identical GPUs; placement matches replicas to pools by model and memory."""

    model: str = Field(
        min_length=1,
        max_length=MAX_SHORT_STRING,
        description="GPU model name as deployments refer to it, e.g. H100, A100, L40S, L4.",
    )
    count: int = Field(
        ge=0, le=MAX_GPUS_PER_POOL, description="Number of GPUs of this model, 0..100,000."
    )
    memory_gib: int = Field(
        alias="memoryGiB",
        ge=1,
        le=MAX_GPU_MEMORY_GIB,
        description="Memory per GPU in GiB, 1..4096.",
    )
    power_w: float = Field(
        ge=0,
        le=MAX_GPU_POWER_W,
        description="Board power per GPU in watts, 0..10,000 (e.g. H100 SXM 700).",
    )

    def power_kw(self) -> float:
        """Facility-independent IT power of the whole pool at full use, in kW."""
        return self.count * self.power_w / 1000.0


class ModuleCapacity(ApiModel):
    """Declared hardware; status.capacity reports what the module's nodes actually expose."""

    gpus: list[GpuPool] = Field(
        default_factory=list,
        max_length=MAX_GPU_POOLS,
        description="One entry per GPU pool; models must be unique.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["model"],
            "x-kubernetes-validations": [unique_by_rule("model", GPU_MODELS_UNIQUE)],
        },
    )

    @field_validator("gpus")
    @classmethod
    def _unique_models(cls, gpus: list[GpuPool]) -> list[GpuPool]:
        unique((g.model for g in gpus), GPU_MODELS_UNIQUE)
        return gpus


class Security(ApiModel):
    """Facts sovereignty policies check: certifications, operator nationality, isolation."""

    certifications: Annotated[list[NonEmptyName], no_duplicates(CERTIFICATIONS_UNIQUE)] = Field(
        default_factory=list,
        max_length=32,
        description="Certifications the site holds, e.g. ISO27001, SOC2, C5; no repeats.",
        json_schema_extra=SET_LIST,
    )
    operator_country: CountryCode | None = Field(
        default=None,
        description="Nationality (ISO 3166-1 alpha-2) of the company operating the module.",
    )
    air_gapped: bool = Field(
        default=False, description="True when the site has no internet egress."
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret, here the kubeconfig of a module's own cluster."""

    namespace: str = Field(
        min_length=1,
        max_length=MAX_SHORT_STRING,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace of the Secret.",
    )
    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(
        default="kubeconfig",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key holding the kubeconfig.",
    )


class ClusterTarget(ApiModel):
    """Where replicas placed on this module run: a remote cluster or a node pool of this one."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("has(self.kubeconfigSecretRef) != has(self.nodeSelector)", CLUSTER_MESSAGE)
            ]
        }
    )

    kubeconfig_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding a kubeconfig for the module's own cluster."
    )
    node_selector: LabelMap | None = Field(
        default=None,
        description="Node labels selecting the module's node pool in the hub cluster; at least "
        "one.",
        json_schema_extra={**LABEL_MAP_SCHEMA, "minProperties": 1},
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.kubeconfig_secret_ref is None) == (self.node_selector is None):
            raise ValueError(CLUSTER_MESSAGE)
        if self.node_selector == {}:
            raise ValueError(NODE_SELECTOR_EMPTY_MESSAGE)
        return self


class AIFactoryModuleSpec(ApiModel):
    """What a module is and offers; the platform team declares it, the operator trusts it."""

    location: Location = Field(description="Physical location and jurisdiction tags.")
    energy: ModuleEnergy = Field(description="Energy mix, carbon intensity and power envelope.")
    capacity: ModuleCapacity = Field(description="GPU pools of the module.")
    security: Security = Field(
        default_factory=Security, description="Certifications, operator nationality, air gap."
    )
    cluster: ClusterTarget = Field(
        description="Where workloads run: exactly one of kubeconfigSecretRef or nodeSelector."
    )
    schedulable: bool = Field(
        default=True,
        description="false cordons the module: replicas already there stay, nothing new is placed.",
    )


class GpuPoolStatus(StatusModel):
    """What the module's nodes report for one GPU pool."""

    model: str = Field(max_length=MAX_SHORT_STRING, description="GPU model of the pool.")
    gpus_allocatable: int = Field(default=0, ge=0, description="GPUs the nodes can allocate.")
    gpus_allocated: int = Field(default=0, ge=0, description="GPUs requested by running pods.")


class ModuleCapacityStatus(StatusModel):
    """Discovered capacity, per pool."""

    gpus: list[GpuPoolStatus] = Field(
        default_factory=list,
        description="Per-pool allocatable and allocated GPUs.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["model"],
        },
    )


class EnergyStatus(StatusModel):
    """Live energy signal; overrides the declared carbon intensity while fresh."""

    carbon_intensity: float | None = Field(
        default=None, ge=0, le=MAX_CARBON_INTENSITY, description="Current gCO2e/kWh, 0..2000."
    )
    renewable_share: float | None = Field(
        default=None, ge=0, le=1, description="Current renewable share, 0..1."
    )
    updated_at: datetime | None = Field(default=None, description="When the signal was read.")
    source: str | None = Field(
        default=None,
        max_length=MAX_SHORT_STRING,
        description="Who wrote the signal: spec (the operator, from spec.energy), schedule, "
        "signal (the operator, from spec.energy.signal), or the name of an external feed. The "
        "operator only overwrites values it wrote itself.",
    )
    provider: str | None = Field(
        default=None,
        max_length=MAX_SHORT_STRING,
        description="Feed the reading came from: ElectricityMaps, WattTime, NationalGridESO "
        "or CSV (unset for spec and schedule values).",
    )
    zone: str | None = Field(
        default=None, max_length=MAX_SHORT_STRING, description="The feed's grid zone or region."
    )
    signal_type: SignalType | None = Field(
        default=None,
        description="average or marginal: readings of different types are never compared.",
    )
    emission_factor_type: EmissionFactorType | None = Field(
        default=None,
        description="lifecycle or direct emission factors: never mixed in one decision.",
    )
    estimated: bool | None = Field(
        default=None, description="True when the provider flags the value as estimated."
    )
    data_time: datetime | None = Field(
        default=None, description="Time the reading is for, as the provider dates it."
    )


class EffectiveEnergyStatus(StatusModel):
    """The energy figures placement uses: the live signal once a change has lasted.

    A feed's reading changes placement only after it has differed from the effective value for
    the operator's signalToleration (seconds and readings), so a short spike moves nothing.
    """

    carbon_intensity: float | None = Field(
        default=None, ge=0, description="gCO2e/kWh placement uses now."
    )
    renewable_share: float | None = Field(
        default=None, ge=0, le=1, description="Renewable share placement uses now, 0..1."
    )
    since: datetime | None = Field(default=None, description="When these values took effect.")
    pending: str | None = Field(
        default=None,
        max_length=1024,
        description="A differing reading not yet in effect and since when, e.g. "
        "'carbonIntensity 450 since 2026-12-01T10:00:00Z'.",
    )


class OutageRecord(StatusModel):
    """One period the module was not Ready."""

    start: datetime = Field(description="When Ready turned False.")
    end: datetime | None = Field(default=None, description="When Ready turned True again.")
    duration_seconds: float | None = Field(
        default=None, ge=0, description="end - start in seconds (unset while ongoing)."
    )


class SloBreachRecord(StatusModel):
    """A deployment's measured latency from a region to this module stayed above its SLO."""

    deployment: str = Field(description="namespace/name of the InferenceDeployment.")
    region: str = Field(description="Demand region whose users saw it.")
    start: datetime = Field(description="When the breach was declared (after the tolerance).")
    end: datetime | None = Field(default=None, description="When it cleared.")
    latency_ms: float | None = Field(
        default=None, ge=0, description="Measured latency (ms) when it was declared."
    )
    max_latency_ms: float | None = Field(default=None, ge=0, description="The SLO (ms).")


#: Outages and SLO breaches kept in status (the newest).
MAX_RELIABILITY_HISTORY = 16


class ModuleReliabilityStatus(StatusModel):
    """How dependable the module has been: readiness over a rolling window, outages, the
    failovers it caused, heartbeat latency and SLO breaches measured on it.

    Outages are counted from the first time the operator saw the module Ready; the window is
    the operator's reliabilityWindow (default one day).
    """

    window_seconds: float | None = Field(
        default=None, ge=0, description="Length of the rolling window in seconds."
    )
    since: datetime | None = Field(
        default=None, description="When the operator first saw the module Ready."
    )
    ready_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fraction of the window (or of the time since `since`, when shorter) the "
        "module was Ready; InferenceDeployment spec.minReliability compares with it.",
    )
    outages: int | None = Field(
        default=None, ge=0, description="Outages (Ready False) overlapping the window."
    )
    outage_seconds: float | None = Field(
        default=None, ge=0, description="Seconds not Ready within the window."
    )
    longest_outage_seconds: float | None = Field(
        default=None, ge=0, description="The longest outage overlapping the window, seconds."
    )
    outage_since: datetime | None = Field(
        default=None, description="Start of the outage going on now, if any."
    )
    recent_outages: list[OutageRecord] | None = Field(
        default=None,
        max_length=MAX_RELIABILITY_HISTORY,
        description="The newest outages in the window (at most 16).",
    )
    failovers_caused: int | None = Field(
        default=None,
        ge=0,
        description="Placement changes that moved replicas off this module because it became "
        "unusable, since `since`.",
    )
    last_failover_time: datetime | None = Field(
        default=None, description="When the module last caused a failover."
    )
    heartbeat_latency_ms: float | None = Field(
        default=None, ge=0, description="Round-trip time of the last heartbeat, milliseconds."
    )
    slo_breaches: int | None = Field(
        default=None,
        ge=0,
        description="Measured-latency SLO breaches declared on this module since `since`.",
    )
    recent_slo_breaches: list[SloBreachRecord] | None = Field(
        default=None,
        max_length=MAX_RELIABILITY_HISTORY,
        description="The newest SLO breaches (at most 16).",
    )
    updated_at: datetime | None = Field(default=None, description="When this was computed.")


class AIFactoryModuleStatus(StatusModel):
    """Observed state: reachability, discovered capacity and live energy."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reachable and EnergySignal conditions.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    capacity: ModuleCapacityStatus | None = Field(
        default=None, description="Capacity discovered from the module's nodes."
    )
    energy: EnergyStatus | None = Field(default=None, description="Live energy signal.")
    effective_energy: EffectiveEnergyStatus | None = Field(
        default=None,
        description="Energy figures placement uses: status.energy once a change has lasted "
        "the signal tolerance (spec and schedule values apply at once).",
    )
    last_heartbeat_time: datetime | None = Field(
        default=None,
        description="Last time the module's cluster answered, written with any other status "
        "change and at least every heartbeatTimeout (seconds) while it keeps answering.",
    )
    gpus_total: int | None = Field(
        default=None, ge=0, description="Sum of gpusAllocatable over pools (printer column)."
    )
    gpus_free: int | None = Field(
        default=None,
        ge=0,
        description="Sum of gpusAllocatable - gpusAllocated over pools (printer column).",
    )
    reliability: ModuleReliabilityStatus | None = Field(
        default=None,
        description="Readiness over a rolling window, outages, failovers caused, heartbeat "
        "latency and SLO breaches.",
    )

    def summarized(self) -> AIFactoryModuleStatus:
        """This status with gpusTotal and gpusFree recomputed from the discovered capacity."""
        pools = self.capacity.gpus if self.capacity else []
        total = sum(p.gpus_allocatable for p in pools)
        free = sum(max(p.gpus_allocatable - p.gpus_allocated, 0) for p in pools)
        return self.model_copy(update={"gpus_total": total, "gpus_free": free})


class AIFactoryModule(Resource):
    """A self-contained AI factory module: GPUs, power and a place in the world.

    Cluster-scoped because a module is shared fleet infrastructure, not owned by a team.
    """

    KIND: ClassVar[str] = "AIFactoryModule"
    PLURAL: ClassVar[str] = "aifactorymodules"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("afm",)
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["AIFactoryModule"] = "AIFactoryModule"
    spec: AIFactoryModuleSpec
    status: AIFactoryModuleStatus | None = None

    def renewable_share(self) -> float:
        """Declared renewable share: solar + wind + hydro + geothermal."""
        return self.spec.energy.renewable_share()

    def _live(self, field: str) -> float | None:
        status = self.status
        if status is None:
            return None
        if status.effective_energy is not None:
            value = getattr(status.effective_energy, field)
            if value is not None:
                return float(value)
        if status.energy is not None:
            value = getattr(status.energy, field)
            return None if value is None else float(value)
        return None

    def effective_renewable_share(self) -> float:
        """The renewable share placement uses: status.effectiveEnergy, else status.energy,
        else the declared one."""
        live = self._live("renewable_share")
        return self.renewable_share() if live is None else live

    def effective_carbon_intensity(self) -> float:
        """The carbon intensity (gCO2e/kWh) placement uses: status.effectiveEnergy, else
        status.energy, else the declared default."""
        live = self._live("carbon_intensity")
        return self.spec.energy.carbon_intensity if live is None else live

    def condition(self, type_: str) -> Condition | None:
        return find_condition(self.status.conditions, type_) if self.status else None

    def ready_fraction(self) -> float:
        """status.reliability.readyFraction; 1.0 while the operator has measured none."""
        rel = self.status.reliability if self.status else None
        if rel is None or rel.ready_fraction is None:
            return 1.0
        return float(rel.ready_fraction)

    def is_ready(self) -> bool:
        """True when the Ready condition is True (a module never reported is not ready)."""
        cond = self.condition("Ready")
        return cond is not None and cond.status is ConditionStatus.TRUE

    def gpu_pool(self, model: str) -> GpuPool | None:
        return next((g for g in self.spec.capacity.gpus if g.model == model), None)

    def total_gpus(self) -> int:
        """Declared GPUs over all pools."""
        return sum(g.count for g in self.spec.capacity.gpus)

    def max_power_kw(self) -> float:
        """Facility power with every declared GPU busy: sum of count * powerW * pue, in kW."""
        return sum(g.power_kw() for g in self.spec.capacity.gpus) * self.spec.energy.pue


__all__ = [
    "AIFactoryModule",
    "AIFactoryModuleSpec",
    "AIFactoryModuleStatus",
    "ClusterTarget",
    "EffectiveEnergyStatus",
    "EnergyScheduleEntry",
    "EnergySource",
    "EnergyStatus",
    "GpuPool",
    "GpuPoolStatus",
    "Location",
    "ModuleCapacity",
    "ModuleCapacityStatus",
    "ModuleEnergy",
    "ModuleReliabilityStatus",
    "OutageRecord",
    "SecretKeyRef",
    "Security",
    "SloBreachRecord",
]
