"""An InferenceRouter's status from its tiers, the members' Ready replicas and live signals. Pure.

Inputs are what the operator already knows (the tier deployments with the status this process
decided, Ready replicas per module, the modules, which cells a policy forbids); the output is
the whole status: shares and demand in effect, one row per tier, routing per region and tier
(Ready replicas only, see routing.py), the cascade's figures against the largest tier serving
everything, and kstatus conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aifactory.api import (
    Condition,
    ConditionStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    RouteTarget,
    find_condition,
    set_condition,
)
from aifactory.api.router import (
    BlendedFigures,
    InferenceRouterStatus,
    RouterRegionRouting,
    TierFiguresStatus,
    TierRoute,
    TierStatus,
)
from aifactory.placement import PlacementSettings

from .figures import (
    Figures,
    ModuleFacts,
    blend,
    geo_rtt,
    mean_rtt_ms,
    placement_grams_per_hour,
    region_rtt_ms,
)
from .routing import ready_routing
from .tiers import RouterSignals, RouterView

READY = "Ready"
STALLED = "Stalled"
RECONCILING = "Reconciling"
DEMAND_SIGNAL = "DemandSignal"
SHARE_SIGNAL = "ShareSignal"

REASON_READY = "TiersReady"
REASON_NOT_READY = "TiersNotReady"
REASON_NO_ROUTE = "NoRoute"
REASON_AS_EXPECTED = "AsExpected"
REASON_PROGRESSING = "Progressing"


@dataclass(frozen=True)
class SignalState:
    """A live source's state: the reading in effect, when it was read, the last error.
    Immutable: the poller replaces it whole."""

    history: tuple[tuple[datetime, Mapping[str, float]], ...] = ()
    effective: Mapping[str, float] | None = None
    read_at: datetime | None = None
    error_reason: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RouterLive:
    """Both live sources of one router: its demand and its tiers' shares."""

    demand: SignalState | None = None
    shares: SignalState | None = None

    def signals(self) -> RouterSignals:
        """What placement uses of them: the readings in effect (None: the spec's)."""
        return RouterSignals(
            demand=self.demand.effective if self.demand else None,
            shares=self.shares.effective if self.shares else None,
        )


@dataclass(frozen=True)
class TierInputs:
    """One tier as the operator sees it now."""

    deployment: InferenceDeployment | None = None
    #: the status this process decided (or the hub's), None before the first plan
    status: InferenceDeploymentStatus | None = None
    #: module -> Ready replicas the members report
    ready: Mapping[str, int] = field(default_factory=dict)
    #: (region, module) pairs a bound Enforce policy forbids
    forbidden: Collection[tuple[str, str]] = ()


def _cond(type_: str, ok: bool, reason: str, message: str, gen: int | None) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        reason=reason,
        message=message[:1024],
        observed_generation=gen,
    )


def signal_condition(
    type_: str, what: str, state: SignalState | None, gen: int | None
) -> Condition:
    """DemandSignal / ShareSignal, worded as the deployments' DemandSignal is."""
    if state is None or (state.error_reason is None and state.effective is None):
        return Condition(
            type=type_,
            status=ConditionStatus.UNKNOWN,
            reason="NotReadYet",
            message=f"live {what} not read yet; using the spec's values",
            observed_generation=gen,
        )
    if state.error_reason is None:
        values = ", ".join(f"{k}={v:g}" for k, v in sorted((state.effective or {}).items()))
        return _cond(
            type_,
            True,
            f"Live{what.title().replace(' ', '')}",
            f"{what} from Prometheus: {values}",
            gen,
        )
    if state.read_at is not None and state.effective:
        kept = f"; keeping the reading of {state.read_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    else:
        kept = "; using the spec's values until a first reading"
    return _cond(type_, False, state.error_reason, f"{state.error_message}{kept}", gen)


def router_status(
    view: RouterView,
    tiers: Mapping[str, TierInputs],
    facts: Mapping[str, ModuleFacts],
    settings: PlacementSettings,
    now: datetime,
    *,
    rtt: Callable[[str, str], float] | None = None,
    baseline: Figures | None = None,
    demand_signal: SignalState | None = None,
    share_signal: SignalState | None = None,
) -> InferenceRouterStatus:
    """The router's whole status. `tiers`: by tier deployment name; `rtt(region, module)` in
    ms (the operator passes its fleet's, measured RTTs included; default: the model)."""
    router = view.router
    spec = router.spec
    gen = router.metadata.generation
    previous = router.status
    regions = [r.name for r in spec.demand.regions]
    coords = {r.name: (r.latitude, r.longitude) for r in spec.demand.regions}
    known = {m for m in facts}
    rtt = rtt or geo_rtt(coords, facts, settings)

    old_routes: dict[str, dict[str, dict[str, float]]] = {}
    for rr in previous.routing if previous else []:
        for tr in rr.tiers:
            old_routes.setdefault(tr.deployment, {})[rr.region] = {
                m.module: m.weight for m in tr.modules
            }

    tier_rows: list[TierStatus] = []
    tier_figures: list[Figures] = []
    routes: dict[str, dict[str, dict[str, float]]] = {}
    not_ready: list[str] = []
    for tier in spec.tiers:
        name = tier.deployment
        share = view.shares.values[name]
        source = view.shares.sources[name]
        demand = {r: view.rps[r] * share for r in regions}
        inputs = tiers.get(name) or TierInputs()
        problem = view.problems.get(name)
        st = inputs.status
        row = TierStatus(
            deployment=name,
            found=problem is None and inputs.deployment is not None,
            share=round(share, 6),
            share_source=source,
            requests_per_second=round(sum(demand.values()), 3),
            message=problem.message if problem else None,
        )
        if problem is not None or inputs.deployment is None or st is None:
            tier_rows.append(row)
            if problem is None and share > 0:
                not_ready.append(f"{name} not placed yet")
            continue
        ready = {m: n for m, n in inputs.ready.items() if m in known}
        weights = ready_routing(
            regions, st.placements, ready, old_routes.get(name), inputs.forbidden
        )
        routes[name] = weights
        g = inputs.deployment.spec.resources.gpus_per_replica
        # the tier's own carbon account when it has one (status.carbon: the same rule)
        grams = (
            st.carbon.grams_per_hour
            if st.carbon is not None
            else placement_grams_per_hour(st.placements, g, facts)
        )
        fig = Figures(sum(demand.values()), mean_rtt_ms(demand, weights, rtt), grams)
        tier_figures.append(fig)
        per_k = fig.grams_per_1000_requests
        row = row.model_copy(
            update={
                "replicas": st.replicas,
                "ready_replicas": st.ready_replicas,
                "mean_rtt_ms": None if fig.mean_rtt_ms is None else round(fig.mean_rtt_ms, 2),
                "grams_per_hour": round(fig.grams_per_hour, 2),
                "grams_per_1000_requests": None if per_k is None else round(per_k, 4),
            }
        )
        tier_rows.append(row)
        ready_cond = find_condition(st.conditions, "Ready")
        if share > 0 and not (ready_cond is not None and ready_cond.is_true):
            not_ready.append(
                f"{name}: {ready_cond.message if ready_cond else 'not reconciled yet'}"
            )

    routing: list[RouterRegionRouting] = []
    unrouted: list[str] = []
    for r in spec.demand.regions:
        rows = []
        for tier in spec.tiers:
            name = tier.deployment
            share = view.shares.values[name]
            weights = routes.get(name, {})
            if name not in routes:
                continue
            mods = weights.get(r.name, {})
            if not mods and share > 0 and view.rps[r.name] > 0:
                unrouted.append(f"{r.name} -> {name}")
            latency = region_rtt_ms(r.name, weights, rtt)
            rows.append(
                TierRoute(
                    deployment=name,
                    share=round(share, 6),
                    requests_per_second=round(view.rps[r.name] * share, 3),
                    modules=[RouteTarget(module=m, weight=w) for m, w in mods.items()],
                    latency_ms=None if latency is None else round(latency, 2),
                )
            )
        routing.append(
            RouterRegionRouting(
                region=r.name, requests_per_second=round(view.rps[r.name], 3), tiers=rows
            )
        )

    cascade = blend(tier_figures) if tier_figures else None
    blended = BlendedFigures(
        cascade=_figures_status(cascade, None) if cascade else None,
        largest_tier=_figures_status(baseline, spec.largest.deployment) if baseline else None,
    )

    conditions = list(previous.conditions) if previous else []
    problems = [(p.reason, p.message) for p in view.problems.values()]
    if problems:
        ready_c = _cond(READY, False, problems[0][0], "; ".join(m for _, m in problems), gen)
    elif not_ready:
        ready_c = _cond(READY, False, REASON_NOT_READY, "; ".join(not_ready), gen)
    elif unrouted:
        ready_c = _cond(
            READY,
            False,
            REASON_NO_ROUTE,
            "no Ready replica serves " + ", ".join(unrouted),
            gen,
        )
    else:
        n = len(spec.tiers)
        ready_c = _cond(READY, True, REASON_READY, f"{n} tiers Ready, every region routed", gen)
    conditions = set_condition(conditions, ready_c, now=now)
    conditions = set_condition(
        conditions,
        _cond(
            STALLED,
            bool(problems),
            problems[0][0] if problems else REASON_AS_EXPECTED,
            "; ".join(m for _, m in problems) or "progressing or done",
            gen,
        ),
        now=now,
    )
    busy = bool(not_ready or unrouted) and not problems
    conditions = set_condition(
        conditions,
        _cond(
            RECONCILING,
            busy,
            REASON_PROGRESSING if busy else REASON_AS_EXPECTED,
            "; ".join(not_ready + [f"no route {u}" for u in unrouted]) if busy else "up to date",
            gen,
        ),
        now=now,
    )
    if spec.demand.prometheus is not None:
        conditions = set_condition(
            conditions, signal_condition(DEMAND_SIGNAL, "demand", demand_signal, gen), now=now
        )
    else:
        conditions = [c for c in conditions if c.type != DEMAND_SIGNAL]
    if any(t.share_from is not None for t in spec.tiers):
        conditions = set_condition(
            conditions, signal_condition(SHARE_SIGNAL, "shares", share_signal, gen), now=now
        )
    else:
        conditions = [c for c in conditions if c.type != SHARE_SIGNAL]

    live_demand = demand_signal.effective if demand_signal else None
    live_shares = share_signal.effective if share_signal else None
    return InferenceRouterStatus(
        observed_generation=gen,
        conditions=conditions,
        shares={k: round(v, 6) for k, v in view.shares.values.items()},
        observed_demand=dict(live_demand) if live_demand else None,
        demand_updated_at=demand_signal.read_at if demand_signal and live_demand else None,
        observed_shares=dict(live_shares) if live_shares else None,
        shares_updated_at=share_signal.read_at if share_signal and live_shares else None,
        tiers=tier_rows,
        routing=routing,
        blended=blended,
        tier_summary=",".join(f"{k}={v:g}" for k, v in view.shares.values.items()),
        mean_rtt_ms=(
            round(cascade.mean_rtt_ms, 2) if cascade and cascade.mean_rtt_ms is not None else None
        ),
        grams_per_1000_requests=(
            round(cascade.grams_per_1000_requests, 4)
            if cascade and cascade.grams_per_1000_requests is not None
            else None
        ),
    )


def _figures_status(f: Figures, deployment: str | None) -> TierFiguresStatus:
    per_k = f.grams_per_1000_requests
    return TierFiguresStatus(
        deployment=deployment,
        mean_rtt_ms=None if f.mean_rtt_ms is None else round(f.mean_rtt_ms, 2),
        grams_per_hour=round(f.grams_per_hour, 2),
        grams_per_1000_requests=None if per_k is None else round(per_k, 4),
    )


__all__ = [
    "DEMAND_SIGNAL",
    "READY",
    "RECONCILING",
    "SHARE_SIGNAL",
    "STALLED",
    "RouterLive",
    "SignalState",
    "TierInputs",
    "router_status",
    "signal_condition",
]
