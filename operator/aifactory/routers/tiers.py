"""Tier demand: what each InferenceRouter asks of the deployments it names. Pure.

For every router, the shares in effect (fixed, or live readings with the fixed tiers sharing
what the live ones leave) and the demand in effect (spec, or the live reading per region) give
each tier its demand per region: requestsPerSecond_r x share. The tier deployment is then placed
as if its spec said so (`apply`), with its own throughputPerReplica, replicas, SLO, energy and
sovereignty rules, and its own headroom (the router's when it sets no `demand`). Summed over
tiers, the replicas of a region cover the router's demand, each tier with its own headroom:
sum_t ceil(rps_r * share_t * (1 + h_t) / throughput_t) * throughput_t >= rps_r.

The operator, `aifactoryctl place` and the simulator all come through `derive`, so a router
means the same everywhere. Nothing here raises for a bad reference: a tier that does not exist,
that another router already feeds, or that cannot be sized is a `TierProblem`, reported on the
router, and the rest of the router still works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aifactory.api import DemandRegion, EffectiveDemand, InferenceDeployment
from aifactory.api.router import InferenceRouter, InferenceRouterSpec

#: Reasons of tier problems (CamelCase: they go into the router's conditions).
REASON_NOT_FOUND = "TierNotFound"
REASON_INVALID = "TierInvalid"
REASON_CLAIMED = "TierClaimed"

#: Where a share in effect comes from.
SOURCE_SPEC = "spec"
SOURCE_LIVE = "prometheus"
SOURCE_REST = "rest"


@dataclass(frozen=True, slots=True)
class Shares:
    """Tier deployment name -> share in effect, and where each one comes from.

    `spec`: the tier's fixed share (or its share until a first live reading); `prometheus`: the
    live reading; `rest`: a fixed tier scaled to serve what the live shares leave.
    """

    values: Mapping[str, float]
    sources: Mapping[str, str]


def effective_shares(spec: InferenceRouterSpec, live: Mapping[str, float] | None) -> Shares:
    """The shares in effect, summing to 1.

    Tiers with a live reading take it (clamped to 0..1; live readings summing above 1 are
    scaled down to 1). The other tiers share the rest in proportion to their spec shares, or
    equally when those are all 0. Without readings the spec shares apply unchanged.
    """
    live = live or {}
    measured = {
        t.deployment: min(1.0, max(0.0, float(live[t.deployment])))
        for t in spec.tiers
        if t.share_from is not None and t.deployment in live
    }
    total_live = sum(measured.values())
    if total_live > 1.0:
        measured = {k: v / total_live for k, v in measured.items()}
        total_live = 1.0
    if not measured:
        return Shares(
            {t.deployment: t.share for t in spec.tiers},
            {t.deployment: SOURCE_SPEC for t in spec.tiers},
        )
    rest = [t for t in spec.tiers if t.deployment not in measured]
    left = max(0.0, 1.0 - total_live)
    base = sum(t.share for t in rest)
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for t in spec.tiers:
        if t.deployment in measured:
            values[t.deployment] = measured[t.deployment]
            sources[t.deployment] = SOURCE_LIVE
        else:
            values[t.deployment] = left * (t.share / base if base > 0 else 1.0 / len(rest))
            sources[t.deployment] = SOURCE_REST
    return Shares(values, sources)


def router_rps(router: InferenceRouter, live: Mapping[str, float] | None) -> dict[str, float]:
    """Requests per second per region in effect: the live reading where there is one (regions
    it does not return keep their spec value), else the spec's."""
    live = live or {}
    return {
        r.name: float(live.get(r.name, r.requests_per_second)) for r in router.spec.demand.regions
    }


@dataclass(frozen=True, slots=True)
class RouterSignals:
    """Live readings of one router, as the placement may use them (None: use the spec)."""

    demand: Mapping[str, float] | None = None
    shares: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class TierDemand:
    """The demand a router derives for one tier deployment."""

    router: str
    deployment: str
    share: float
    share_source: str
    headroom: float
    regions: tuple[DemandRegion, ...]

    @property
    def requests_per_second(self) -> dict[str, float]:
        return {r.name: r.requests_per_second for r in self.regions}

    def status(self) -> EffectiveDemand:
        """The tier deployment's status.effectiveDemand (router by name: same namespace)."""
        return EffectiveDemand(
            router=self.router.split("/", 1)[-1],
            share=round(self.share, 6),
            headroom=self.headroom,
            requests_per_second={k: round(v, 6) for k, v in self.requests_per_second.items()},
        )


@dataclass(frozen=True, slots=True)
class TierProblem:
    """Why a tier gets no demand from its router."""

    reason: str
    message: str


@dataclass(frozen=True)
class RouterView:
    """One router after derivation: shares and demand in effect, problems per tier."""

    router: InferenceRouter
    shares: Shares
    rps: Mapping[str, float]
    problems: Mapping[str, TierProblem] = field(default_factory=dict)


@dataclass(frozen=True)
class TierPlan:
    """Every router's derivation in one snapshot."""

    #: deployment ref -> the demand its router derives
    tiers: Mapping[str, TierDemand] = field(default_factory=dict)
    #: router ref -> its view
    routers: Mapping[str, RouterView] = field(default_factory=dict)

    def effective_demand(self) -> dict[str, EffectiveDemand]:
        return {ref: t.status() for ref, t in self.tiers.items()}


def tier_headroom(infd: InferenceDeployment, router: InferenceRouter) -> float:
    """The tier's own spec.demand.headroom when its spec sets `demand`, else the router's."""
    if "demand" in infd.spec.model_fields_set:
        return infd.spec.demand.headroom
    return router.spec.demand.headroom


def derive(
    routers: Iterable[InferenceRouter],
    deployments: Iterable[InferenceDeployment],
    signals: Mapping[str, RouterSignals] | None = None,
    *,
    invalid: Iterable[str] = (),
) -> TierPlan:
    """Every router's tier demand. `signals`: live readings by router ref; `invalid`: refs of
    deployments that exist but cannot be read (the models reject them).

    A deployment is fed by at most one router: the first by namespace/name claims it, a later
    one reports TierClaimed for that tier. Routers being deleted feed nothing.
    """
    signals = signals or {}
    by_ref = {d.ref: d for d in deployments}
    unreadable = set(invalid)
    tiers: dict[str, TierDemand] = {}
    views: dict[str, RouterView] = {}
    for router in sorted(routers, key=lambda r: r.ref):
        sig = signals.get(router.ref) or RouterSignals()
        shares = effective_shares(router.spec, sig.shares)
        rps = router_rps(router, sig.demand)
        problems: dict[str, TierProblem] = {}
        deleting = router.metadata.deletion_timestamp is not None
        for tier in router.spec.tiers:
            ref = router.tier_ref(tier)
            infd = by_ref.get(ref)
            if infd is None:
                problems[tier.deployment] = (
                    TierProblem(
                        REASON_INVALID,
                        f"InferenceDeployment {ref} cannot be read by the operator (see its "
                        "Stalled condition)",
                    )
                    if ref in unreadable
                    else TierProblem(REASON_NOT_FOUND, f"InferenceDeployment {ref} does not exist")
                )
                continue
            if infd.spec.throughput_per_replica is None:
                problems[tier.deployment] = TierProblem(
                    REASON_INVALID,
                    f"InferenceDeployment {ref} sets no spec.throughputPerReplica: its replicas "
                    "cannot be sized from the router's demand",
                )
                continue
            if ref in tiers:
                problems[tier.deployment] = TierProblem(
                    REASON_CLAIMED,
                    f"InferenceDeployment {ref} is already a tier of InferenceRouter "
                    f"{tiers[ref].router}; a deployment follows one router",
                )
                continue
            if deleting or infd.metadata.deletion_timestamp is not None:
                continue
            share = shares.values[tier.deployment]
            regions = tuple(
                r.model_copy(update={"requests_per_second": rps[r.name] * share})
                for r in router.spec.demand.regions
            )
            tiers[ref] = TierDemand(
                router=router.ref,
                deployment=ref,
                share=share,
                share_source=shares.sources[tier.deployment],
                headroom=tier_headroom(infd, router),
                regions=regions,
            )
        views[router.ref] = RouterView(router, shares, rps, problems)
    return TierPlan(tiers, views)


def apply(infd: InferenceDeployment, tier: TierDemand) -> InferenceDeployment:
    """A copy of the deployment placed for its router's demand: the router's regions with the
    tier's requests per second, the tier's headroom, no demand source of its own."""
    demand = infd.spec.demand.model_copy(
        update={"regions": list(tier.regions), "headroom": tier.headroom, "prometheus": None}
    )
    spec = infd.spec.model_copy(update={"demand": demand})
    return infd.model_copy(update={"spec": spec})


def with_tiers(
    deployments: Sequence[InferenceDeployment], plan: TierPlan
) -> list[InferenceDeployment]:
    """The deployments as placement sees them: tiers carry their derived demand."""
    return [apply(d, plan.tiers[d.ref]) if d.ref in plan.tiers else d for d in deployments]


__all__ = [
    "REASON_CLAIMED",
    "REASON_INVALID",
    "REASON_NOT_FOUND",
    "SOURCE_LIVE",
    "SOURCE_REST",
    "SOURCE_SPEC",
    "RouterSignals",
    "RouterView",
    "Shares",
    "TierDemand",
    "TierPlan",
    "TierProblem",
    "apply",
    "derive",
    "effective_shares",
    "router_rps",
    "tier_headroom",
    "with_tiers",
]
