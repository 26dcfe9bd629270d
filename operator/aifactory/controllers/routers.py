"""InferenceRouters in the operator: index, live signals, tier demand, status and routing.

* `register` adds a kopf index of routers and an event handler that queues the deployments of
  a changed router's namespace (its tiers, and those it no longer names);
* `with_tier_demand` is the placement hook: the snapshot every cycle and every fleet-wide
  solve plans from, with each tier deployment carrying its router's demand (so one fleet solve
  sees every tier together, and a share change is a demand change the planner handles under
  hysteresis, disruption budget and make-before-break);
* `RouterTasks.poll` reads live router demand and tier shares (the last good reading is kept
  on errors, as for live demand) and queues the tiers when what placement uses changed;
* `RouterTasks.publish` writes each router's status, its routing ConfigMap, the JSON the HTTP
  endpoint `/routing/<namespace>/<name>` serves, and the Gateway API HTTPRoutes of the member
  clusters that have the Gateway API (discovered, re-checked every few minutes).

Only the leader polls and writes; like every other task, both survive any error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from aifactory.api import (
    AIFactoryModule,
    InferenceDeployment,
    InferenceDeploymentStatus,
)
from aifactory.api.limits import MAX_REQUESTS_PER_SECOND
from aifactory.api.router import SHARE_TOLERANCE, InferenceRouter, InferenceRouterStatus
from aifactory.clusters import (
    FIELD_MANAGER,
    ClusterAccessError,
    ClusterClient,
    ClusterError,
    ClusterView,
    member_replicas,
)
from aifactory.placement import FleetState, PlacementSettings, place_one
from aifactory.placement.compliance import forbidden_cells
from aifactory.placement.cycle import prepare
from aifactory.placement.from_api import held_gpus, module_view, policy_view, workload_view
from aifactory.placement.priority import UnknownPriorityClassError
from aifactory.routers import export
from aifactory.routers.figures import (
    Figures,
    decision_figures,
    largest_tier_what_if,
    module_facts,
)
from aifactory.routers.status import RouterLive, SignalState, TierInputs, router_status
from aifactory.routers.tiers import RouterSignals, TierPlan, derive, with_tiers
from aifactory.signals.demand import (
    REASON_EMPTY_SAMPLE,
    REASON_OUT_OF_RANGE,
    DemandSignalError,
    fetch_demand,
)
from aifactory.signals.share import fetch_share
from aifactory.signals.smoothing import stabilize_demand

from .fleet import HubSnapshot
from .handlers import _parse
from .runtime import GROUP, VERSION, Runtime

log = logging.getLogger(__name__)

ROUTERS = "inferencerouters"
#: Seconds between checks whether a cluster serves the Gateway API (it may be installed later).
DISCOVERY_INTERVAL = 300.0
#: Seconds between listings of our HTTPRoutes in a cluster when nothing changed (strays).
ROUTE_GC_INTERVAL = 60.0


# ------------------------------------------------------------------------------ kopf handlers


def register(registry: kopf.OperatorRegistry) -> None:
    """The router index and event handler (called from handlers.register)."""

    @kopf.index(GROUP, VERSION, ROUTERS, registry=registry, id="router_index")
    def router_index(name: str, namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
        ref = f"{namespace}/{name}"
        return {ref: _parse(InferenceRouter, ref, body)}

    @kopf.on.event(GROUP, VERSION, ROUTERS, registry=registry, id="router_event")
    async def router_event(
        name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, type: str, **_: Any
    ) -> None:
        rt: Runtime = memo["runtime"]
        meta = body.get("metadata", {})
        key = ("router", type == "DELETED", meta.get("generation"), meta.get("uid"))
        ref = f"router:{namespace}/{name}"
        if rt.seen_keys.get(ref) == key:
            return  # only status (ours) changed
        rt.seen_keys[ref] = key
        # its tiers, and deployments it named before (they lose their derived demand)
        rt.mark(d.ref for d in rt.snapshot().deployments if d.namespace == namespace)


# ------------------------------------------------------------------------------ placement hook


def signals_of(rt: Runtime) -> dict[str, RouterSignals]:
    """Router ref -> the live readings placement uses now."""
    return {ref: live.signals() for ref, live in dict(rt.router_signals).items()}


def tier_plan(rt: Runtime, snapshot: HubSnapshot) -> TierPlan:
    invalid = [i.key for i in snapshot.invalid if i.kind == "InferenceDeployment"]
    return derive(snapshot.routers, snapshot.deployments, signals_of(rt), invalid=invalid)


def with_tier_demand(rt: Runtime, snapshot: HubSnapshot) -> HubSnapshot:
    """The snapshot placement plans from: tier deployments carry their router's demand (in
    memory only; the hub keeps the user's spec) and `tiers` says which ones do."""
    if not snapshot.routers:
        return snapshot
    plan = tier_plan(rt, snapshot)
    if not plan.tiers:
        return snapshot
    return dataclasses.replace(
        snapshot,
        deployments=tuple(with_tiers(snapshot.deployments, plan)),
        tiers=plan.effective_demand(),
    )


# ------------------------------------------------------------------------------ live signals


def _read_demand(router: InferenceRouter, now: datetime) -> tuple[dict[str, float] | None, Any]:
    source = router.spec.demand.prometheus
    assert source is not None
    try:
        sample = fetch_demand(source, now=now)
        declared = {r.name for r in router.spec.demand.regions}
        rps = {k: v for k, v in sample.requests_per_second.items() if k in declared}
        if not rps:
            raise DemandSignalError(
                REASON_EMPTY_SAMPLE,
                f"no demand series for the regions of {router.ref}; keeping the last demand",
            )
        huge = {k: v for k, v in rps.items() if v > MAX_REQUESTS_PER_SECOND}
        if huge:
            raise DemandSignalError(
                REASON_OUT_OF_RANGE,
                f"requests per second above the API's limit of {MAX_REQUESTS_PER_SECOND:g}: "
                + ", ".join(f"{k}={v:g}" for k, v in sorted(huge.items())),
            )
    except DemandSignalError as exc:
        return None, exc
    return rps, None


def _read_shares(router: InferenceRouter, now: datetime) -> tuple[dict[str, float] | None, Any]:
    out: dict[str, float] = {}
    try:
        for tier in router.spec.tiers:
            if tier.share_from is not None:
                out[tier.deployment] = fetch_share(tier.share_from.prometheus, now=now)
        total = sum(out.values())
        if total > 1.0 + SHARE_TOLERANCE:
            raise DemandSignalError(
                REASON_OUT_OF_RANGE,
                "live shares sum to more than 1: "
                + ", ".join(f"{k}={v:g}" for k, v in sorted(out.items())),
            )
    except DemandSignalError as exc:
        return None, exc
    return out, None


def _next_state(
    state: SignalState | None,
    reading: Mapping[str, float] | None,
    error: DemandSignalError | None,
    now: datetime,
    *,
    window: float | None,
    written: Mapping[str, float] | None,
    written_at: datetime | None,
) -> SignalState:
    """The last-good-reading rules of live demand: a good reading replaces the state
    (demand: the highest within the stabilization window); an error keeps the reading in
    effect (after a restart: the one status recorded)."""
    state = state or SignalState()
    if error is None and reading is not None:
        if window is None:
            return SignalState(effective=dict(reading), read_at=now)
        effective, history = stabilize_demand(state.history, reading, now, window)
        return SignalState(history=history, effective=effective, read_at=now)
    assert error is not None
    kept, read_at = state.effective, state.read_at
    if kept is None and written:
        kept, read_at = dict(written), written_at
    return dataclasses.replace(
        state,
        effective=kept,
        read_at=read_at,
        error_reason=error.reason,
        error_message=error.message,
    )


# ------------------------------------------------------------------------------ the tasks


@dataclass
class _Exports:
    """What this process last wrote to member clusters (skip unchanged applies)."""

    #: (cluster key, namespace/name) -> digest of the HTTPRoute applied
    applied: dict[tuple[str, str], str] = field(default_factory=dict)
    #: cluster key -> (serves the Gateway API, checked at monotonic time)
    discovered: dict[str, tuple[bool, float]] = field(default_factory=dict)
    #: cluster key -> monotonic time of the last listing of our routes
    listed: dict[str, float] = field(default_factory=dict)
    #: router ref -> why its routes could not be written (last attempt)
    errors: dict[str, str] = field(default_factory=dict)


class RouterTasks:
    """The router poller and publisher (started by loop.Loops)."""

    def __init__(self, rt: Runtime, io: Executor) -> None:
        self.rt = rt
        self.io = io
        self.exports = _Exports()

    # ---------------------------------------------------------------------------- poll
    async def poll(self) -> float:
        rt = self.rt
        poll = rt.settings.demand_poll_interval
        if not rt.active:
            return min(1.0, poll)
        routers = [
            r
            for r in rt.snapshot().routers
            if r.spec.demand.prometheus is not None
            or any(t.share_from is not None for t in r.spec.tiers)
        ]
        wanted = {r.ref for r in routers}
        signals = {k: v for k, v in rt.router_signals.items() if k in wanted}
        if not routers:
            rt.router_signals = signals
            return poll
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)

        def read(r: InferenceRouter) -> tuple[Any, Any]:
            demand = _read_demand(r, now) if r.spec.demand.prometheus is not None else None
            shares = _read_shares(r, now) if any(t.share_from for t in r.spec.tiers) else None
            return demand, shares

        results = await asyncio.gather(*(loop.run_in_executor(self.io, read, r) for r in routers))
        window = rt.settings.demand_stabilization_window
        changed: set[str] = set()
        for r, (demand, shares) in zip(routers, results, strict=True):
            old = signals.get(r.ref) or RouterLive()
            st = r.status or InferenceRouterStatus()
            new = RouterLive(
                demand=_next_state(
                    old.demand,
                    demand[0],
                    demand[1],
                    now,
                    window=window,
                    written=st.observed_demand,
                    written_at=st.demand_updated_at,
                )
                if demand is not None
                else None,
                shares=_next_state(
                    old.shares,
                    shares[0],
                    shares[1],
                    now,
                    window=None,
                    written=st.observed_shares,
                    written_at=st.shares_updated_at,
                )
                if shares is not None
                else None,
            )
            if new.signals() != old.signals():
                changed.add(r.namespace)
            signals[r.ref] = new
        rt.router_signals = signals
        if changed:
            rt.mark(d.ref for d in rt.snapshot().deployments if d.namespace in changed)
        return poll

    # ---------------------------------------------------------------------------- publish
    async def publish(self) -> float:
        rt = self.rt
        interval = rt.settings.status_interval
        if not rt.active:
            return min(1.0, interval)
        snapshot = rt.snapshot()
        observers = rt.members.observers()
        views = {key: obs.snapshot() for key, obs in observers.items()}
        decided = dict(rt.decided)
        decided_uid = dict(rt.decided_uid)
        now = datetime.now(UTC)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(
            self.io, self._compute, snapshot, views, decided, decided_uid, now
        )
        docs: dict[str, Any] = {}
        for router, status, doc in out.routers:
            docs[router.ref] = doc
            self._write_status(router, status)
            cm = export.routing_configmap(router, doc)
            if rt.routing_written.get(f"router:{router.ref}") != cm["data"]["routing.json"]:
                rt.writer.submit(f"router:{router.ref}#routing", "apply", "", cm)
        rt.routing_views = docs
        clients = {key: obs.client for key, obs in observers.items()}
        await loop.run_in_executor(self.io, self._sync_routes, clients, out.routes)
        return interval

    def _write_status(self, router: InferenceRouter, status: InferenceRouterStatus) -> None:
        rt = self.rt
        key = f"router:{router.ref}"
        body = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        previous = rt.written.get(key, {}).get("status")
        if previous is None and router.status is not None:
            previous = router.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        if previous is not None and _same_ignoring_times(previous, body):
            return
        for k in previous or {}:
            body.setdefault(k, None)
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{router.namespace}/{ROUTERS}/{router.name}"
        rt.writer.submit(key, "status", path + "/status", {"status": body})

    # ---------------------------------------------------------------------------- compute
    def _compute(
        self,
        snapshot: HubSnapshot,
        views: Mapping[str, ClusterView],
        decided: Mapping[str, InferenceDeploymentStatus],
        decided_uid: Mapping[str, str | None],
        now: datetime,
    ) -> _Computed:
        rt = self.rt
        settings = _placement_settings(rt)
        plan = tier_plan(rt, snapshot)
        if not plan.routers:
            return _Computed()  # (the sync still removes routes no router wants)
        derived = {d.ref: d for d in with_tiers(snapshot.deployments, plan)}
        raw = {d.ref: d for d in snapshot.deployments}
        ready: dict[str, dict[str, int]] = {}
        for cluster in views.values():
            for owner, mods in member_replicas(cluster).items():
                for module, r in mods.items():
                    ready.setdefault(owner, {})[module] = r.ready
        modules = snapshot.modules
        facts = module_facts(modules)
        policies = tuple(policy_view(p) for p in snapshot.policies)
        fleet = FleetState(
            [module_view(m, assume_ready=False) for m in modules], settings, rtt=rt.rtt_table
        )
        cluster_names = {m.name: _cluster_name(m) for m in modules}
        cluster_keys: dict[str, str] = {}
        for m in modules:
            try:
                cluster_keys[m.name] = rt.members.target(m).cluster_key
            except ClusterAccessError:
                continue

        def status_of(ref: str) -> InferenceDeploymentStatus | None:
            d = raw.get(ref)
            if d is None:
                return None
            mine = decided.get(ref)
            if mine is not None and decided_uid.get(ref) == d.metadata.uid:
                return mine
            return d.status

        out = _Computed()
        live = dict(rt.router_signals)
        for ref, view in sorted(plan.routers.items()):
            router = view.router
            if router.metadata.deletion_timestamp is not None:
                continue
            tiers: dict[str, TierInputs] = {}
            for tier in router.spec.tiers:
                tref = router.tier_ref(tier)
                d = derived.get(tref)
                if d is None or tier.deployment in view.problems:
                    continue
                tiers[tier.deployment] = TierInputs(
                    deployment=raw[tref],
                    status=status_of(tref),
                    ready=ready.get(tref, {}),
                    forbidden=_forbidden(fleet, d, snapshot, policies),
                )
            baseline = _baseline(view, raw, status_of, snapshot, policies, settings, rt)
            signals = live.get(ref) or RouterLive()
            status = router_status(
                view,
                tiers,
                facts,
                settings,
                now,
                rtt=_fleet_rtt(fleet, router),
                baseline=baseline,
                demand_signal=signals.demand,
                share_signal=signals.shares,
            )
            doc = export.routing_document(router, status, cluster_names, rt.settings.tier_header)
            out.routers.append((router, status, doc))
            serving = []
            for tier in router.spec.tiers:
                observed = ready.get(router.tier_ref(tier), {})
                used = {
                    m.module
                    for row in status.routing
                    for t in row.tiers
                    if t.deployment == tier.deployment
                    for m in t.modules
                }
                serving.append((tier.deployment, {m: observed.get(m, 0) for m in sorted(used)}))
            routes = export.http_routes(
                router,
                serving,
                cluster_keys,
                header=rt.settings.tier_header,
                gateway=rt.settings.tier_gateway,
            )
            for key, route in routes.items():
                out.routes.setdefault(key, {})[router.ref] = route
        return out

    # ---------------------------------------------------------------------------- HTTPRoutes
    def _gateway_api(self, key: str, client: ClusterClient) -> bool:
        """Does the cluster serve gateway.networking.k8s.io/v1 HTTPRoutes? (cached)"""
        now = time.monotonic()
        cached = self.exports.discovered.get(key)
        if cached is not None and now - cached[1] < DISCOVERY_INTERVAL:
            return cached[0]
        try:
            found = client.get(f"/apis/{export.GATEWAY_GROUP}/{export.GATEWAY_VERSION}")
            ok = any(r.get("name") == export.HTTPROUTES for r in found.get("resources") or [])
        except ClusterError as err:
            if err.status != 404:
                return cached[0] if cached else False  # unreachable: ask again next time
            ok = False
        if cached is None or cached[0] != ok:
            log.info(
                "cluster %s %s the Gateway API (HTTPRoute %s/%s)",
                key,
                "serves" if ok else "does not serve",
                export.GATEWAY_GROUP,
                export.GATEWAY_VERSION,
            )
        self.exports.discovered[key] = (ok, now)
        return ok

    def _sync_routes(
        self,
        clients: Mapping[str, ClusterClient],
        wanted: Mapping[str, Mapping[str, dict[str, Any]]],
    ) -> None:
        """Apply changed HTTPRoutes, delete ours that no router wants (in every cluster with
        the Gateway API), remember failures for the routers' status."""
        errors: dict[str, str] = {}
        for key, client in sorted(clients.items()):
            if not self._gateway_api(key, client):
                continue
            mine = wanted.get(key, {})
            changed = False
            for ref, route in sorted(mine.items()):
                meta = route["metadata"]
                digest = meta["annotations"][export.DIGEST_ANNOTATION]
                slot = (key, f"{meta['namespace']}/{meta['name']}")
                if self.exports.applied.get(slot) == digest:
                    continue
                try:
                    client.apply(
                        export.route_path(meta["namespace"], meta["name"]),
                        route,
                        FIELD_MANAGER,
                        what=f"apply HTTPRoute {slot[1]}",
                    )
                except ClusterError as err:
                    errors[ref] = f"{key}: {err.reason}: {err.message}"
                    if self.exports.errors.get(ref) != errors[ref]:
                        log.warning("cannot apply HTTPRoute %s in %s: %s", slot[1], key, err)
                    self.exports.applied.pop(slot, None)
                    continue
                self.exports.applied[slot] = digest
                changed = True
            now = time.monotonic()
            if not changed and now - self.exports.listed.get(key, 0.0) < ROUTE_GC_INTERVAL:
                keep = {_route_name(r) for r in mine.values()}
                if not any(s[0] == key and s[1] not in keep for s in self.exports.applied):
                    continue
            self._collect(key, client, mine)
            self.exports.listed[key] = now
        self.exports.errors = errors

    def _collect(self, key: str, client: ClusterClient, mine: Mapping[str, dict[str, Any]]) -> None:
        keep = {_route_name(r) for r in mine.values()}
        selector = f"{export.MANAGED_BY}={export.MANAGED_BY_VALUE},{export.ROUTER_LABEL}"
        try:
            items, _ = client.list_pages(
                f"/apis/{export.GATEWAY_GROUP}/{export.GATEWAY_VERSION}/{export.HTTPROUTES}",
                [("labelSelector", selector)],
            )
        except ClusterError as err:
            log.info("cannot list HTTPRoutes in %s: %s", key, err.reason)
            return
        for item in items:
            meta = item.get("metadata") or {}
            name = f"{meta.get('namespace')}/{meta.get('name')}"
            if name in keep:
                continue
            try:
                client.delete(
                    export.route_path(str(meta.get("namespace")), str(meta.get("name"))),
                    what=f"delete HTTPRoute {name}",
                )
            except ClusterError as err:
                log.info("cannot delete HTTPRoute %s in %s: %s", name, key, err.reason)
                continue
            self.exports.applied.pop((key, name), None)
            log.info("removed HTTPRoute %s from %s (no router routes there)", name, key)
        for slot in [s for s in self.exports.applied if s[0] == key and s[1] not in keep]:
            self.exports.applied.pop(slot, None)


def _route_name(route: Mapping[str, Any]) -> str:
    return f"{route['metadata']['namespace']}/{route['metadata']['name']}"


@dataclass
class _Computed:
    routers: list[tuple[InferenceRouter, InferenceRouterStatus, dict[str, Any]]] = field(
        default_factory=list
    )
    #: cluster key -> router ref -> HTTPRoute
    routes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _placement_settings(rt: Runtime) -> PlacementSettings:
    from .cycle import placement_settings

    return placement_settings(rt)


def _cluster_name(module: AIFactoryModule) -> str:
    """The member cluster a module's workloads run in, as the routing JSON names it."""
    ref = module.spec.cluster.kubeconfig_secret_ref
    if module.spec.cluster.node_selector or ref is None:
        return "hub"
    return ref.name


def _workload(d: InferenceDeployment, snapshot: HubSnapshot) -> Any:
    labels = snapshot.namespace_labels.get(d.namespace)
    try:
        return workload_view(d, labels)
    except UnknownPriorityClassError:
        spec = d.spec.model_copy(update={"priority_class_name": None})
        return workload_view(d.model_copy(update={"spec": spec}), labels)


def _forbidden(
    fleet: FleetState, d: InferenceDeployment, snapshot: HubSnapshot, policies: tuple[Any, ...]
) -> set[tuple[str, str]]:
    """(region, module) cells a bound Enforce policy forbids for this tier."""
    try:
        ws = prepare(fleet, _workload(d.model_copy(update={"status": None}), snapshot), policies)
    except ValueError:
        return set()
    return set(forbidden_cells(fleet, ws))


def _baseline(
    view: Any,
    raw: Mapping[str, InferenceDeployment],
    status_of: Callable[[str], InferenceDeploymentStatus | None],
    snapshot: HubSnapshot,
    policies: tuple[Any, ...],
    settings: PlacementSettings,
    rt: Runtime,
) -> Figures | None:
    """What-if: the largest tier serves the router's whole demand, on the capacity the fleet
    has free with the tiers' own GPUs counted free."""
    router: InferenceRouter = view.router
    largest = raw.get(router.tier_ref(router.spec.largest))
    if largest is None or router.spec.largest.deployment in view.problems:
        return None
    tiers = [
        raw[router.tier_ref(t)].model_copy(update={"status": status_of(router.tier_ref(t))})
        for t in router.spec.tiers
        if router.tier_ref(t) in raw
    ]
    held = held_gpus(snapshot.modules, tiers)
    modules = [module_view(m, held=held.get(m.name), assume_ready=False) for m in snapshot.modules]
    what_if = largest_tier_what_if(view, largest)
    fleet = FleetState(modules, settings, rtt=rt.rtt_table)
    try:
        decision = place_one(_workload(what_if, snapshot), fleet, policies)
    except ValueError:
        return None
    return decision_figures(fleet, decision, dict(view.rps))


def _fleet_rtt(fleet: FleetState, router: InferenceRouter) -> Callable[[str, str], float]:
    """RTT(region, module) as placement sees it: measured where the operator has RTTs, else
    the model."""
    rows = {
        r.name: fleet.region_rtt(r.name, r.latitude, r.longitude)[0]
        for r in router.spec.demand.regions
    }

    def rtt(region: str, module: str) -> float:
        return float(rows[region][fleet.index[module]])

    return rtt


def _same_ignoring_times(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - {"lastTransitionTime"}
        return all(_same_ignoring_times(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            _same_ignoring_times(x, y) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b)


def routing_endpoint(rt: Runtime) -> Callable[[str], Any]:
    """The HTTP view `/routing[/<namespace>/<name>]`: the routers' routing JSON (read-only)."""

    def view(rest: str) -> Any:
        docs = rt.routing_views
        if not rest:
            return {"routers": sorted(docs)}
        return docs.get(rest)

    return view


__all__ = [
    "ROUTERS",
    "RouterTasks",
    "register",
    "routing_endpoint",
    "signals_of",
    "tier_plan",
    "with_tier_demand",
]
