"""InferenceRouter: one stream of requests split over model tiers (an edge-first cascade).

A router owns the demand (requests per second per user region, live from Prometheus if asked)
and says which fraction of it each tier serves. The operator derives every tier's demand per
region (router demand x share) and places each tier deployment by its own rules: a small
distilled model with a tight SLO lands near every region, a large one with a loose SLO on a few
green modules. The tier deployments' specs are never changed; what they were placed for is in
their `status.effectiveDemand`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from aifactory.api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    ApiModel,
    Condition,
    ObjectName,
    Resource,
    StatusModel,
    cel_rule,
    find_condition,
    unique,
    unique_by_rule,
)
from aifactory.api.deployment import Demand, RouteTarget

#: Most tiers of one router (a cascade rarely has more than three).
MAX_TIERS = 8
#: Shares may miss 1 by this much (0.7 + 0.2 + 0.1 is 0.9999999999999999 in binary floats).
SHARE_TOLERANCE = 1e-6

#: Messages shared by the CEL rules and the pydantic validators.
SHARES_SUM_MESSAGE = "tiers[].share must sum to 1"
FIXED_TIER_MESSAGE = (
    "at least one tier must have a fixed share (no shareFrom): it serves what the live shares leave"
)
REGIONS_REQUIRED_MESSAGE = "demand.regions: a router needs at least one demand region"
TIER_NAMES_UNIQUE = "tiers[].deployment"
SHARE_URL_MESSAGE = "shareFrom.prometheus.url must start with http:// or https://"

_CEL_SUM = "self.tiers.map(t, t.share).sum()"


def _check_share_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{SHARE_URL_MESSAGE}; got {url!r}")
    return url


class PrometheusShareSource(ApiModel):
    """A Prometheus instant query giving the fraction of requests a tier serves, 0..1.

    Typically the escalation rate of a cascade, e.g.
    `sum(rate(router_escalations_total[5m])) / sum(rate(router_requests_total[5m]))`. The query
    must return one sample (a scalar or a one-series vector).
    """

    url: Annotated[str, AfterValidator(_check_share_url)] = Field(
        min_length=1,
        max_length=2048,
        description="Base URL of the Prometheus HTTP API; /api/v1/query is appended.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.startsWith('http://') || self.startsWith('https://')",
                    SHARE_URL_MESSAGE,
                )
            ]
        },
    )
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL instant query returning one value in 0..1: the tier's share.",
    )
    timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="HTTP timeout of one query in seconds."
    )


class ShareSource(ApiModel):
    """Where a live share comes from."""

    prometheus: PrometheusShareSource = Field(description="A Prometheus instant query.")


class RouterTier(ApiModel):
    """One tier: an InferenceDeployment in the router's namespace and its share of requests."""

    deployment: ObjectName = Field(
        description="Name of an InferenceDeployment in the router's namespace."
    )
    share: float = Field(
        ge=0,
        le=1,
        description=(
            "Fraction of the router's requests this tier serves, 0..1; the shares of all tiers "
            "sum to 1. With shareFrom, the share used until a first live reading."
        ),
    )
    share_from: ShareSource | None = Field(
        default=None,
        description=(
            "Measure the share live (last good reading kept on errors); tiers without it share "
            "what the live ones leave, in proportion to their fixed shares."
        ),
    )


def _shares_sum_to_one(tiers: list[RouterTier]) -> list[RouterTier]:
    total = sum(t.share for t in tiers)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ValueError(f"{SHARES_SUM_MESSAGE}; got {total:g}")
    return tiers


class InferenceRouterSpec(ApiModel):
    """The total demand and how it is split over the tiers."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    f"{_CEL_SUM} >= {1 - SHARE_TOLERANCE!r} && {_CEL_SUM} <= "
                    f"{1 + SHARE_TOLERANCE!r}",
                    SHARES_SUM_MESSAGE,
                    field_path=".tiers",
                ),
                cel_rule(
                    "self.tiers.exists(t, !has(t.shareFrom))",
                    FIXED_TIER_MESSAGE,
                    field_path=".tiers",
                ),
                cel_rule(
                    "has(self.demand.regions) && size(self.demand.regions) > 0",
                    REGIONS_REQUIRED_MESSAGE,
                    field_path=".demand.regions",
                ),
            ]
        }
    )

    demand: Demand = Field(
        description=(
            "The router's demand per user region (as an InferenceDeployment's, live Prometheus "
            "source included); headroom is the default of tiers that set none."
        )
    )
    tiers: Annotated[list[RouterTier], AfterValidator(_shares_sum_to_one)] = Field(
        min_length=1,
        max_length=MAX_TIERS,
        description=(
            "Tiers, smallest model first; the last one is the largest (the what-if baseline "
            "serves everything with it). Deployment names must be unique."
        ),
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["deployment"],
            "x-kubernetes-validations": [unique_by_rule("deployment", TIER_NAMES_UNIQUE)],
        },
    )

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, tiers: list[RouterTier]) -> list[RouterTier]:
        unique((t.deployment for t in tiers), TIER_NAMES_UNIQUE)
        if all(t.share_from is not None for t in tiers):
            raise ValueError(FIXED_TIER_MESSAGE)
        return tiers

    @model_validator(mode="after")
    def _needs_regions(self) -> Self:
        if not self.demand.regions:
            raise ValueError(REGIONS_REQUIRED_MESSAGE)
        return self

    @property
    def largest(self) -> RouterTier:
        """The last tier: the largest model, the baseline of the what-if figures."""
        return self.tiers[-1]


# --------------------------------------------------------------------------------------------
# status


class TierRoute(StatusModel):
    """One tier serving one region: its share of the region's requests and where they go."""

    deployment: str = Field(description="Tier InferenceDeployment name.")
    share: float = Field(ge=0, description="Fraction of the region's requests for this tier.")
    requests_per_second: float | None = Field(
        default=None, description="Requests per second of this region the tier serves."
    )
    modules: list[RouteTarget] = Field(
        default_factory=list,
        description="Modules and weights (Ready replicas only; never a module a policy of the "
        "region forbids).",
    )
    latency_ms: float | None = Field(
        default=None, description="Expected round-trip time of these requests, ms."
    )


class RouterRegionRouting(StatusModel):
    """How one demand region's requests are split over tiers and modules."""

    region: str = Field(description="Demand region name.")
    requests_per_second: float | None = Field(
        default=None, description="The router's requests per second from this region."
    )
    tiers: list[TierRoute] = Field(default_factory=list, description="Per tier, the routes.")


class TierStatus(StatusModel):
    """One tier as the router sees it."""

    deployment: str = Field(description="Tier InferenceDeployment name.")
    found: bool = Field(default=False, description="The deployment exists and is usable.")
    share: float = Field(default=0.0, ge=0, description="Share in effect, 0..1.")
    share_source: str | None = Field(
        default=None, description="spec, prometheus or prometheus (last good reading)."
    )
    requests_per_second: float | None = Field(
        default=None, description="Requests per second the tier serves (all regions)."
    )
    replicas: int | None = Field(default=None, ge=0, description="Replicas the tier wants.")
    ready_replicas: int | None = Field(default=None, ge=0, description="Ready replicas.")
    mean_rtt_ms: float | None = Field(
        default=None, description="Request-weighted mean round-trip time of the tier, ms."
    )
    grams_per_hour: float | None = Field(
        default=None, description="gCO2e/h of the tier's GPUs (GPUs x powerW x pue x intensity)."
    )
    grams_per_1000_requests: float | None = Field(
        default=None, description="gCO2e per 1,000 requests of the tier."
    )
    message: str | None = Field(default=None, description="What is wrong with the tier, if any.")


class TierFiguresStatus(StatusModel):
    """Mean latency and carbon of serving requests one way."""

    deployment: str | None = Field(
        default=None, description="The tier the figures are for (the what-if baseline)."
    )
    mean_rtt_ms: float | None = Field(default=None, description="Request-weighted mean RTT, ms.")
    grams_per_hour: float | None = Field(default=None, description="gCO2e per hour.")
    grams_per_1000_requests: float | None = Field(
        default=None, description="gCO2e per 1,000 requests."
    )


class BlendedFigures(StatusModel):
    """The cascade as placed against serving every request with the largest tier."""

    cascade: TierFiguresStatus | None = Field(
        default=None, description="Every tier together, weighted by its requests."
    )
    largest_tier: TierFiguresStatus | None = Field(
        default=None,
        description="What-if: the largest tier serves all demand, placed by its own rules on "
        "the fleet's free capacity (the tiers' GPUs counted free).",
    )


class InferenceRouterStatus(StatusModel):
    """Shares in effect, tiers, routing per region and tier, and the blended figures."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Stalled, Reconciling, DemandSignal and ShareSignal conditions.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    shares: dict[str, float] | None = Field(
        default=None, description="Tier deployment -> share in effect."
    )
    observed_demand: dict[str, float] | None = Field(
        default=None,
        description="Requests per second per region from spec.demand.prometheus, as last read "
        "successfully.",
    )
    demand_updated_at: datetime | None = Field(
        default=None, description="When observedDemand was last read."
    )
    observed_shares: dict[str, float] | None = Field(
        default=None, description="Live shares per tier, as last read successfully."
    )
    shares_updated_at: datetime | None = Field(
        default=None, description="When observedShares was last read."
    )
    tiers: list[TierStatus] = Field(default_factory=list, description="Per tier, in spec order.")
    routing: list[RouterRegionRouting] = Field(
        default_factory=list, description="Per region, per tier: modules and weights."
    )
    blended: BlendedFigures | None = Field(
        default=None,
        description="Mean RTT and gCO2e per 1,000 requests of the cascade and of the largest "
        "tier serving everything.",
    )
    tier_summary: str | None = Field(default=None, description="tier=share, ... (printer column).")
    mean_rtt_ms: float | None = Field(
        default=None, description="The cascade's mean RTT in ms (printer column)."
    )
    grams_per_1000_requests: float | None = Field(
        default=None, description="The cascade's gCO2e per 1,000 requests (printer column)."
    )


class InferenceRouter(Resource):
    """A stream of requests split over model tiers: most near users, the rest where it is green.

    Namespaced like the InferenceDeployments it names; each tier is placed with demand = router
    demand x share per region, by its own SLO, energy and sovereignty rules.
    """

    KIND: ClassVar[str] = "InferenceRouter"
    PLURAL: ClassVar[str] = "inferencerouters"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("infr",)
    NAMESPACED: ClassVar[bool] = True

    kind: Literal["InferenceRouter"] = "InferenceRouter"
    spec: InferenceRouterSpec
    status: InferenceRouterStatus | None = None

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def ref(self) -> str:
        """ "namespace/name"."""
        return f"{self.namespace}/{self.metadata.name}"

    def tier_ref(self, tier: RouterTier) -> str:
        """The tier deployment's "namespace/name"."""
        return f"{self.namespace}/{tier.deployment}"

    def condition(self, type_: str) -> Condition | None:
        return find_condition(self.status.conditions, type_) if self.status else None


__all__ = [
    "FIXED_TIER_MESSAGE",
    "MAX_TIERS",
    "REGIONS_REQUIRED_MESSAGE",
    "SHARES_SUM_MESSAGE",
    "SHARE_TOLERANCE",
    "BlendedFigures",
    "InferenceRouter",
    "InferenceRouterSpec",
    "InferenceRouterStatus",
    "PrometheusShareSource",
    "RouterRegionRouting",
    "RouterTier",
    "ShareSource",
    "TierFiguresStatus",
    "TierRoute",
    "TierStatus",
]
