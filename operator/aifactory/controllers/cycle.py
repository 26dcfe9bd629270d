"""One placement cycle: read (snapshot + member views) -> plan every queued deployment -> jobs.

Deployments queued within the batch window are placed together on one FleetState and one
ledger of free GPUs, each seeing what the ones before it took, so two deployments arriving
at once never get the same GPUs. The cycle itself does no I/O: it returns member jobs, hub
writes and Events for the loop to hand to the executor, the writer and the recorder.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aifactory import metrics
from aifactory.api import (
    CarbonStatus,
    Condition,
    ConditionStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    set_condition,
)
from aifactory.clusters import (
    HUB_CLUSTER,
    ClusterAccessError,
    ClusterView,
    MemberReplicas,
    MemberTarget,
    member_object_name,
    member_replicas,
    render,
    secret_key,
)
from aifactory.clusters.workload import digest
from aifactory.placement import Decision, PlacementSettings, WorkloadView, place_fleet
from aifactory.placement.accounting import grams_per_hour, latency_only, mean_rtt_ms
from aifactory.placement.compliance import forbidden_cells
from aifactory.placement.cycle import run_scores
from aifactory.placement.filters.gpu import eligible_pools
from aifactory.placement.framework import BoolArray
from aifactory.placement.from_api import workload_view
from aifactory.placement.priority import (
    SYSTEM_CLASSES,
    PriorityClassView,
    UnknownPriorityClassError,
    priority_of,
)
from aifactory.placement.state import FleetState, WorkloadState
from aifactory.signals.demand import apply_demand

from . import planner
from .executor import Job
from .fleet import (
    FleetContext,
    HubSnapshot,
    Ledger,
    build_fleet,
    decided_pools,
    holdings,
    observed_gpus,
    observed_pools,
    resolve_unknown_pools,
    without_priority_class,
)
from .routers import with_tier_demand
from .runtime import (
    DEPLOYMENTS,
    FINALIZER,
    GROUP,
    VERSION,
    DemandState,
    EngineMemo,
    FleetPlan,
    Runtime,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Write:
    key: str
    kind: str
    path: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    ref: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    uid: str | None
    type: str
    reason: str
    message: str


@dataclass
class CycleResult:
    jobs: list[Job] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    decided: dict[str, InferenceDeploymentStatus] = field(default_factory=dict)
    decided_uid: dict[str, str | None] = field(default_factory=dict)
    blocked: dict[str, dict[str, planner.PendingBlock]] = field(default_factory=dict)
    adopted: dict[str, datetime] = field(default_factory=dict)
    settled: dict[str, bool] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    blind_at: dict[str, float] = field(default_factory=dict)
    #: seconds until a pendingTimeout or block clock may change the plan (None: no clock)
    recheck: dict[str, float | None] = field(default_factory=dict)
    placed: list[str] = field(default_factory=list)
    metrics: dict[
        str, tuple[dict[str, int], int, float | None, tuple[float, float, float | None]]
    ] = field(default_factory=dict)
    #: decision records of placement changes (accountability.py), for the record keeper
    records: list[Any] = field(default_factory=list)


_EMPTY_DECISION = Decision("", 0, 0, (), {}, 0.0)


def placement_settings(rt: Runtime) -> PlacementSettings:
    s = rt.settings
    return PlacementSettings(
        earth_radius_km=s.earth_radius_km,
        route_factor=s.route_factor,
        fibre_km_per_ms=s.fibre_km_per_ms,
        rtt_overhead_ms=s.rtt_overhead_ms,
        carbon_normaliser=s.carbon_normaliser,
        unplaced_cost=s.unplaced_cost,
        hysteresis=s.hysteresis,
        milp_time_limit_s=s.solver_time_limit,
    )


def status_path(infd_ref: str) -> str:
    ns, name = infd_ref.split("/", 1)
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{DEPLOYMENTS}/{name}"


def status_body(
    status: InferenceDeploymentStatus, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A merge patch of status: the new fields, and null for fields the new one drops."""
    new = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    for key in previous or {}:
        if key not in new:
            new[key] = None
    return {"status": new}


def finalizer_write(infd: InferenceDeployment, *, add: bool) -> Write:
    """A JSON patch that adds or removes our finalizer, guarded by a test of the list we saw
    (finalizers of others are never lost; a concurrent change makes it fail and retry)."""
    old = list(infd.metadata.finalizers)
    new = [*old, FINALIZER] if add else [f for f in old if f != FINALIZER]
    ops: list[dict[str, Any]] = (
        [{"op": "test", "path": "/metadata/finalizers", "value": old}] if old else []
    )
    ops.append(
        {"op": "add" if not old else "replace", "path": "/metadata/finalizers", "value": new}
    )
    return Write(f"{infd.ref}#finalizer", "jsonpatch", status_path(infd.ref), {"patch": ops})


def _targets(rt: Runtime, snapshot: HubSnapshot) -> tuple[dict[str, MemberTarget], dict[str, str]]:
    """module -> its cluster target; module -> why it has none (access errors)."""
    targets: dict[str, MemberTarget] = {}
    errors: dict[str, str] = {}
    for m in snapshot.modules:
        try:
            targets[m.name] = rt.members.target(m)
        except ClusterAccessError as err:
            errors[m.name] = f"{err.reason}: {err.message}"
    return targets, errors


def _member_states(
    ref: str,
    modules: set[str],
    targets: Mapping[str, MemberTarget],
    target_errors: Mapping[str, str],
    views: Mapping[str, ClusterView],
    replicas: Mapping[str, Mapping[str, Mapping[str, MemberReplicas]]],
    asked: Mapping[str, int] | None = None,
) -> dict[str, planner.MemberState]:
    """`asked`: module -> replicas our newest member write asked for; Ready replicas are
    counted up to it (the member converges to it, whatever its cached object still says)."""
    asked = asked or {}
    out: dict[str, planner.MemberState] = {}
    seen: set[str] = set()
    for key, view in views.items():
        for module, r in replicas.get(key, {}).get(ref, {}).items():
            t = targets.get(module)
            if t is not None and t.cluster_key != key:
                continue  # a leftover in a cluster the module no longer points at: GC's job
            seen.add(module)
            w = r.workload
            out[module] = planner.MemberState(
                module=module,
                known=view.synced and view.reachable,
                exists=w is not None,
                replicas=w.replicas if w else 0,
                ready=min(r.ready, asked.get(module, r.ready)),
                waiting_since=r.waiting_since,
                unschedulable=r.unschedulable,
                spec_hash=w.spec_hash if w else "",
                unknown_reason="" if (view.synced and view.reachable) else (view.error or ""),
            )
    for module in sorted(modules - seen):
        t = targets.get(module)
        if t is None:
            out[module] = planner.MemberState(
                module=module,
                known=False,
                unknown_reason=target_errors.get(module, "cluster not resolved"),
            )
            continue
        cv = views.get(t.cluster_key)
        known = cv is not None and cv.synced and cv.reachable
        out[module] = planner.MemberState(
            module=module,
            known=known,
            unknown_reason="" if known else ((cv.error if cv else None) or "not observed"),
        )
    return out


def _demand(infd: InferenceDeployment, state: DemandState | None) -> InferenceDeployment:
    if state is None or not state.effective or infd.spec.demand.prometheus is None:
        return infd  # (a router's tier has no source of its own: its router's demand rules)
    return apply_demand(infd, state.effective)


def _demand_condition(infd: InferenceDeployment, state: DemandState | None) -> Condition | None:
    if infd.spec.demand.prometheus is None:
        return None
    gen = infd.metadata.generation
    if state is None or (state.error_reason is None and state.effective is None):
        return Condition(
            type="DemandSignal",
            status=ConditionStatus.UNKNOWN,
            reason="NotReadYet",
            message="live demand not read yet; using spec.demand values",
            observed_generation=gen,
        )
    if state.error_reason is None:
        return Condition(
            type="DemandSignal",
            status=ConditionStatus.TRUE,
            reason="LiveDemand",
            message="requests per second from Prometheus: "
            + ", ".join(f"{k}={v:g}" for k, v in sorted((state.effective or {}).items())),
            observed_generation=gen,
        )
    if state.read_at is not None:
        msg = (
            f"{state.error_message}; keeping the demand read at "
            f"{state.read_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
    else:
        msg = f"{state.error_message}; using the static spec.demand values until a first reading"
    return Condition(
        type="DemandSignal",
        status=ConditionStatus.FALSE,
        reason=state.error_reason,
        message=msg,
        observed_generation=gen,
    )


def _event(infd: InferenceDeployment, e: planner.EventSpec) -> Event:
    return Event(
        ref=infd.ref,
        api_version=f"{GROUP}/{VERSION}",
        kind="InferenceDeployment",
        name=infd.name,
        namespace=infd.namespace,
        uid=infd.metadata.uid,
        type=e.type,
        reason=e.reason,
        message=e.message,
    )


def _cells_key(cells: Mapping[tuple[str, str], int]) -> tuple[tuple[str, str, int], ...]:
    return tuple(sorted((r, m, k) for (r, m), k in cells.items() if k > 0))


def run_cycle(
    rt: Runtime,
    snapshot: HubSnapshot,
    views: Mapping[str, ClusterView],
    refs: set[str],
    now: datetime,
) -> CycleResult:
    """Plan every deployment in `refs` (and clean up what needs it). No I/O."""
    out = CycleResult()
    snapshot = with_tier_demand(rt, snapshot)  # InferenceRouter tiers carry derived demand
    settings = rt.settings
    targets, target_errors = _targets(rt, snapshot)
    cluster_of = {m: t.cluster_key for m, t in targets.items()}
    for m in snapshot.modules:
        if m.name not in cluster_of:
            key = secret_key(m)
            if key:
                cluster_of[m.name] = key
    selectors = {m: dict(t.node_selector) for m, t in targets.items()}
    # between rebalances the running placement stays unless it breaks a rule (hysteresis
    # 100%): optimisation moves come only from the rebalancer's fleet-wide plan
    keep = dataclasses.replace(placement_settings(rt), hysteresis=1.0)
    ctx = build_fleet(
        snapshot,
        views,
        cluster_of,
        selectors,
        now,
        toleration=settings.toleration_seconds,
        settings=keep,
        rtt=rt.rtt_table,
    )
    by_module = snapshot.by_module()
    replicas = {key: member_replicas(view) for key, view in views.items()}

    def status_of(d: InferenceDeployment) -> InferenceDeploymentStatus | None:
        mine = rt.decided.get(d.ref)
        if mine is not None and rt.decided_uid.get(d.ref) == d.metadata.uid:
            return mine
        return d.status

    held = {}
    for d in snapshot.deployments:
        st = status_of(d)
        decided = resolve_unknown_pools(
            decided_pools(d.model_copy(update={"status": st})), d, by_module
        )
        held[d.ref] = holdings(decided, ctx.owned.get(d.ref, {}))
    ledger = Ledger(ctx, held)
    by_ref = {d.ref: d for d in snapshot.deployments}
    plan_settings = planner.Settings(
        budget=settings.disruption_budget,
        pending_timeout=settings.pending_timeout,
        toleration_seconds=settings.toleration_seconds,
    )

    # garbage: member objects whose InferenceDeployment is gone (never while not warm)
    live = set(by_ref) | {i.key for i in snapshot.invalid if i.kind == "InferenceDeployment"}
    for key, view in views.items():
        if not (view.synced and view.reachable):
            continue
        for w in view.workloads:
            if w.owner in live:
                continue
            target = next((t for t in targets.values() if t.cluster_key == key), None)
            if target is None and key == HUB_CLUSTER:
                continue
            if target is None:
                continue
            out.jobs.append(
                Job(w.owner, target, planner.MemberAction("delete", w.module, 0, "owner gone"))
            )

    classes = snapshot.priority_views()
    order = sorted(refs, key=lambda r: (-_priority(by_ref.get(r), classes), r))
    queue = collections.deque(order)
    planned: set[str] = set()
    ctx_extra = _CycleExtra(
        classes=classes,
        status_of=status_of,
        static_key=repr((ctx.policies, keep)),
        lowest=min((_priority(d, classes) for d in snapshot.deployments), default=0),
    )
    while queue:
        ref = queue.popleft()
        if ref in planned:
            continue
        planned.add(ref)
        infd = by_ref.get(ref)
        if infd is None:
            inv = next((i for i in snapshot.invalid if i.key == ref), None)
            if inv is not None:
                _plan_invalid(rt, inv, views, replicas, targets, out, now)
            else:
                out.forgotten.append(ref)
            continue
        try:
            if infd.metadata.deletion_timestamp is not None:
                _plan_deletion(rt, infd, views, replicas, targets, out, now)
                continue
            with metrics.observe("inferencedeployment"):
                _plan_one(
                    rt,
                    infd,
                    status_of(infd),
                    snapshot,
                    ctx,
                    ledger,
                    views,
                    replicas,
                    targets,
                    target_errors,
                    plan_settings,
                    out,
                    now,
                    ctx_extra,
                )
            for victim in ctx_extra.preempted:
                if victim not in planned or victim in ctx_extra.replan:
                    planned.discard(victim)
                    queue.append(victim)
            ctx_extra.replan.clear()
        except Exception as exc:  # one bad object never stalls the fleet
            log.exception("planning %s failed", ref)
            _plan_failed(rt, infd, f"{type(exc).__name__}: {exc}", out, now)
    return out


@dataclass
class _CycleExtra:
    """What one cycle shares between its deployments: PriorityClasses, the other deployments
    as the engine sees them (built once, only when a preemption is tried), preemptions."""

    classes: tuple[PriorityClassView, ...]
    status_of: Any
    #: what the engine reads of the fleet this cycle, but its free GPUs (see EngineMemo)
    static_key: str = ""
    #: module name -> repr of its engine view this cycle (memo keys), filled on demand
    module_keys: dict[str, str] = field(default_factory=dict)

    def module_key(self, fleet: FleetState, name: str) -> str:
        hit = self.module_keys.get(name)
        if hit is None:
            i = fleet.index.get(name)
            hit = self.module_keys[name] = "" if i is None else repr(fleet.modules[i])
        return hit

    #: lowest priority value of any deployment: nobody to preempt below it
    lowest: int = 0
    running: list[WorkloadView] | None = None
    #: victim ref -> module -> replicas displaced there this cycle
    preempted: dict[str, dict[str, planner.Preempted]] = field(default_factory=dict)
    replan: set[str] = field(default_factory=set)


def _priority(infd: InferenceDeployment | None, classes: tuple[PriorityClassView, ...]) -> int:
    if infd is None:
        return 0
    try:
        return priority_of(infd.spec.priority_class_name, classes)[0]
    except UnknownPriorityClassError:
        return 0


def _running(snapshot: HubSnapshot, ctx: FleetContext, extra: _CycleExtra) -> list[WorkloadView]:
    """Every deployment with its running placement and priority (preemption candidates)."""
    if extra.running is not None:
        return extra.running
    out: list[WorkloadView] = []
    for d in snapshot.deployments:
        st = extra.status_of(d)
        cells = planner.cells_of(
            st.placements if st else [], has_demand=bool(d.spec.demand.regions)
        )
        try:
            wl = workload_view(
                d, snapshot.namespace_labels.get(d.namespace), priority_classes=extra.classes
            )
        except (UnknownPriorityClassError, ValueError):
            continue
        bound = ctx.owned.get(d.ref, {})
        out.append(
            dataclasses.replace(
                wl,
                current=planner.as_current(
                    cells, observed_pools(bound, d.spec.resources.gpus_per_replica)
                ),
            )
        )
    extra.running = out
    return out


def _plan_failed(
    rt: Runtime, infd: InferenceDeployment, why: str, out: CycleResult, now: datetime
) -> None:
    st = rt.decided.get(infd.ref) or infd.status or InferenceDeploymentStatus()
    conditions = set_condition(
        list(st.conditions),
        Condition(
            type=planner.STALLED,
            status=ConditionStatus.TRUE,
            reason="PlanningFailed",
            message=planner._clip(f"the operator could not plan this deployment: {why}"),
            observed_generation=infd.metadata.generation,
        ),
        now=now,
    )
    status = st.model_copy(update={"conditions": conditions})
    out.decided[infd.ref] = status
    out.decided_uid[infd.ref] = infd.metadata.uid
    out.settled[infd.ref] = False
    out.writes.append(
        Write(
            infd.ref,
            "status",
            status_path(infd.ref) + "/status",
            status_body(status, rt.written.get(infd.ref, {}).get("status")),
        )
    )
    out.events.append(
        _event(infd, planner.EventSpec("Warning", "PlanningFailed", planner._clip(why)))
    )


def _plan_one(
    rt: Runtime,
    infd: InferenceDeployment,
    status: InferenceDeploymentStatus | None,
    snapshot: HubSnapshot,
    ctx: FleetContext,
    ledger: Ledger,
    views: Mapping[str, ClusterView],
    replicas: Mapping[str, Mapping[str, Mapping[str, MemberReplicas]]],
    targets: Mapping[str, MemberTarget],
    target_errors: Mapping[str, str],
    plan_settings: planner.Settings,
    out: CycleResult,
    now: datetime,
    extra: _CycleExtra,
) -> None:
    ref = infd.ref
    demand_state = rt.demand.get(ref)
    effective = _demand(infd, demand_state)
    effective = effective.model_copy(update={"status": status})
    has_demand = bool(infd.spec.demand.regions)
    current = planner.cells_of(status.placements if status else [], has_demand=has_demand)
    bound = ctx.owned.get(ref, {})
    member_modules = set(planner.per_module(current))
    members = _member_states(
        ref, member_modules, targets, target_errors, views, replicas, rt.executor.asked(ref)
    )
    preempted = extra.preempted.get(ref, {})
    after_preemption, _ = planner.without_preempted(current, preempted)
    trimmed, stuck = planner.without_stuck(
        after_preemption, members, now, plan_settings.pending_timeout, rt.blocked.get(ref, {})
    )
    # the planner's rules decide which blocks hold (the same call it makes itself)
    draft = planner.Inputs(
        infd=infd,
        wanted={},
        current=current,
        modules={},
        members=members,
        decision=_EMPTY_DECISION,
        pending_blocks=rt.blocked.get(ref, {}),
    )
    blocked = planner.pending_blocks(draft, stuck, now, plan_settings.pending_timeout)
    in_force = planner.blocked_now(blocked, now)
    g = infd.spec.resources.gpus_per_replica
    clamp: dict[str, dict[str, int]] = {}
    for m in in_force:
        keep = planner.per_module(trimmed).get(m, 0)
        have = {model: gpus for (mm, model), gpus in bound.items() if mm == m}
        clamp[m] = {model: min(gpus, keep * g) for model, gpus in have.items()}
    missing_class: str | None = None
    try:
        workload = workload_view(
            effective,
            snapshot.namespace_labels.get(infd.namespace),
            priority_classes=extra.classes,
        )
    except UnknownPriorityClassError as exc:
        missing_class = exc.name
        workload = workload_view(
            without_priority_class(effective), snapshot.namespace_labels.get(infd.namespace)
        )
    workload = dataclasses.replace(
        workload, current=planner.as_current(trimmed, observed_pools(bound, g))
    )
    if rt.accountability is not None:  # (region, module) pairs out of a measured SLO
        workload = rt.accountability.restrict(ref, workload)
    wanted = {r.name: r.replicas for r in workload.regions} or {"": workload.replicas}
    ledger.release(ref)
    # The engine keeps a whole running placement whatever the rest of the fleet does
    # (hysteresis 1.0 between rebalances): while its inputs are the same and it still fits,
    # the last decision stands, and the replans that pod and status events trigger cost no
    # solve (issue #15). A changed spec, demand, module or policy, or a full module, re-solves.
    # Only the modules it runs on matter to a kept placement (a change elsewhere cannot break
    # it, and the hysteresis keeps it against any cheaper one); the rebalancer looks for
    # better placements fleet-wide. The explanation of other modules is refreshed at least
    # every rebalanceInterval.
    memo_key = (
        extra.static_key,
        repr(tuple(extra.module_key(ctx.fleet, a.module) for a in workload.current)),
        repr(workload),
        repr(sorted(clamp.items())),
    )
    cached = rt.engine_memo.get(ref)
    decision: Decision | None = None
    if (
        cached is not None
        and cached.key == memo_key
        and cached.rtt is rt.rtt_table
        and now.timestamp() - cached.at < rt.settings.rebalance_interval
    ):
        fresh = dataclasses.replace(cached.ws, eligible_pool=_eligible(ctx.fleet, workload))
        if ledger.still_fits(fresh, cached.decision, clamp):
            decision, ws = cached.decision, _with_rtt(fresh, ctx)
    if decision is None:
        decision, ws = ledger.place(workload, ctx.policies, clamp=clamp)
    if (
        decision.unplaced_replicas
        and missing_class is None
        and workload.preemption_policy != "Never"
        and workload.priority > extra.lowest
        and not ws.binding.missing
    ):
        running = [r for r in _running(snapshot, ctx, extra) if r.key != ref]
        if any(r.priority < workload.priority for r in running):
            decision, ws = ledger.place(workload, ctx.policies, clamp=clamp, running=running)
            for pre in decision.preemptions:
                victim = extra.preempted.setdefault(pre.deployment, {})
                old = victim.get(pre.module)
                victim[pre.module] = planner.Preempted(
                    pre.replicas + (old.replicas if old else 0), ref, workload.priority
                )
                other = next((d for d in snapshot.deployments if d.ref == pre.deployment), None)
                gpus = pre.replicas * (other.spec.resources.gpus_per_replica if other else 1)
                ledger.take(pre.deployment, pre.module, gpus)
                extra.replan.add(pre.deployment)
                extra.running = None  # the victim's placement changes
    if decision.unplaced_replicas and in_force:
        decision = _blocked_note(decision, blocked, in_force, plan_settings.pending_timeout)
    if cached is not None and decision is cached.decision:
        forbidden = dict(cached.forbidden)
    else:
        forbidden = forbidden_cells(ctx.fleet, ws)
        if decision.kept_current and not decision.unplaced_replicas and not decision.preemptions:
            rt.engine_memo[ref] = EngineMemo(
                memo_key, rt.rtt_table, decision, _slim(ws), forbidden, now.timestamp()
            )
        else:
            rt.engine_memo.pop(ref, None)
    binding = ws.binding
    # the rebalancer's target, once per plan, when it started from this very placement
    fp: FleetPlan | None = rt.fleet_plan
    rebalance = None
    if (
        fp is not None
        and ref in fp.decisions
        and fp.decisions[ref].stability.startswith("replaced")
        and fp.started_from.get(ref) == _cells_key(trimmed)
        and rt.adopted.get(ref) != fp.made_at
    ):
        rebalance = fp.decisions[ref]
        grows = {a.module for a in rebalance.assignments} & in_force
        if grows:
            # the fleet plan does not know where this deployment's pods stayed Pending: never
            # send them back there while the block lasts
            rebalance = None
    modules_of_interest = (
        set(planner.per_module(current))
        | {a.module for a in decision.assignments}
        | {a.module for a in (rebalance.assignments if rebalance else ())}
    )
    members = _member_states(
        ref, modules_of_interest, targets, target_errors, views, replicas, rt.executor.asked(ref)
    )
    rendered: dict[str, str] = {}
    for module in modules_of_interest:
        t = targets.get(module)
        mod = snapshot.module(module)
        if t is None or mod is None:
            continue
        models = tuple(
            sorted(
                p.model
                for p in mod.spec.capacity.gpus
                if infd.spec.resources.accepts(p.model, p.memory_gib)
            )
        )
        # the template depends on the spec (generation), the module and its pools only
        rkey = (
            infd.metadata.uid,
            infd.metadata.generation,
            module,
            tuple(sorted(t.node_selector.items())),
            models,
            _pc(infd),
        )
        memo = rt.rendered_memo.setdefault(ref, {})
        if rkey not in memo:
            if len(memo) > 64:
                memo.clear()
            memo[rkey] = digest(
                render(infd, module, 0, t.node_selector, models, priority_class=_pc(infd))
            )
        rendered[module] = memo[rkey]
    inputs = planner.Inputs(
        infd=effective,
        wanted=wanted,
        current=current,
        modules=ctx.uses,
        members=members,
        decision=decision,
        forbidden=forbidden,
        missing_policies=binding.missing,
        rebalance_target=rebalance,
        apply_errors=rt.executor.errors(ref),
        pending_blocks=rt.blocked.get(ref, {}),
        rendered_hash=rendered,
        audit=decision.audit,
        preempted=preempted,
        missing_priority_class=missing_class,
    )
    result = planner.plan(inputs, now, plan_settings, observed_gpus(bound))
    followed_fleet_plan = rebalance is not None and (
        result.rebalanced
        or result.step.cells != planner.decision_cells(decision, has_demand=has_demand)
    )
    if followed_fleet_plan and not _fits(ledger, workload, result, ctx, bound, g):
        # the fleet plan assumed others would move too; this step does not fit next to them
        # as they are: no rebalancing step this time (the next plan tries again)
        log.info("rebalancer: the step for %s does not fit the fleet as it is; skipped", ref)
        result = planner.plan(
            dataclasses.replace(inputs, rebalance_target=None),
            now,
            plan_settings,
            observed_gpus(bound),
        )
    status_new = result.status
    signal = _demand_condition(infd, demand_state)
    if signal is not None:
        status_new = status_new.model_copy(
            update={"conditions": set_condition(status_new.conditions, signal, now=now)}
        )
    if demand_state is not None and demand_state.effective:
        status_new = status_new.model_copy(
            update={
                "observed_demand": demand_state.effective,
                "demand_updated_at": demand_state.read_at,
            }
        )
    previous_carbon = status.carbon if status is not None else None
    fresh_blind = (
        previous_carbon is None
        or [(p.module, p.replicas) for p in status_new.placements]
        != [(p.module, p.replicas) for p in (status.placements if status else [])]
        or now.timestamp() - rt.blind_at.get(ref, 0.0) > rt.settings.resync_interval
    )
    account = carbon_account(
        status_new, ws, ctx, ledger, workload, decision, None if fresh_blind else previous_carbon
    )
    if fresh_blind:
        out.blind_at[ref] = now.timestamp()
    status_new = status_new.model_copy(update={"carbon": account})
    if rt.settings.advisory:
        status_new = status_new.model_copy(
            update={
                "conditions": set_condition(
                    status_new.conditions,
                    Condition(
                        type="Advisory",
                        status=ConditionStatus.TRUE,
                        reason="AdvisoryMode",
                        message="the operator runs with advisory: true: it decides and reports "
                        "placements but does not change member clusters",
                        observed_generation=infd.metadata.generation,
                    ),
                    now=now,
                )
            }
        )
    if ref in snapshot.tiers:
        status_new = status_new.model_copy(update={"effective_demand": snapshot.tiers[ref]})
    if rt.accountability is not None:  # SLOBreached; a record when the placement changed
        status_new = rt.accountability.decorate(infd, status_new, now)
        out.records.extend(
            rt.accountability.capture(infd, effective, current, result, ws, ctx, snapshot, now)
        )
    # the ledger: what this deployment holds now (bound pods + its new decision in flight)
    decided_new = {p.module: dict(p.gpus or {}) for p in status_new.placements}
    ledger.reserve(ref, holdings(decided_new, bound))
    out.decided[ref] = status_new
    out.decided_uid[ref] = infd.metadata.uid
    out.blocked[ref] = dict(result.block)
    out.settled[ref] = result.settled
    out.recheck[ref] = planner.next_deadline(
        members, result.block, now, plan_settings.pending_timeout
    )
    if result.rebalanced and fp is not None:
        out.adopted[ref] = fp.made_at
    previous_written = rt.written.get(ref, {}).get("status")
    body = status_body(status_new, previous_written)
    if (
        body["status"] != {k: v for k, v in (previous_written or {}).items()}
        or previous_written is None
    ):
        out.writes.append(Write(ref, "status", status_path(ref) + "/status", body))
    if FINALIZER not in infd.metadata.finalizers:
        out.writes.append(finalizer_write(infd, add=True))
    for e in result.events:
        out.events.append(_event(infd, e))
    in_flight = rt.executor.in_flight(ref)
    for action in result.actions:
        t = targets.get(action.module)
        if t is None or action.module in in_flight:
            continue
        mod = snapshot.module(action.module)
        models = tuple(
            sorted(
                p.model
                for p in (mod.spec.capacity.gpus if mod else [])
                if infd.spec.resources.accepts(p.model, p.memory_gib)
            )
        )
        member = members.get(action.module)
        out.jobs.append(
            Job(
                ref,
                t,
                action,
                infd,
                models,
                create_namespace=member is None or not member.exists,
                priority_class=member_priority_class(infd, snapshot),
            )
        )
    out.placed.append(ref)
    out.metrics[ref] = (
        {p.module: p.replicas for p in status_new.placements},
        status_new.unsatisfied.replicas if status_new.unsatisfied else 0,
        decision.carbon_intensity,
        (account.grams_per_hour, account.latency_only_grams_per_hour, account.mean_rtt_ms),
    )
    # the routing ConfigMap is rendered (JSON) only when the routing table changed
    routing_key = (
        infd.metadata.uid,
        tuple(
            (
                r.region,
                tuple((m.module, m.weight, _cluster_key(targets, m.module)) for m in r.modules),
            )
            for r in status_new.routing
        ),
    )
    if rt.routing_keys.get(ref) != routing_key or ref not in rt.routing_written:
        routing = _routing_configmap(infd, status_new, targets)
        digest_now = routing["data"]["routing.json"] if routing is not None else ""
        if routing is not None and rt.routing_written.get(ref) != digest_now:
            out.writes.append(Write(f"{ref}#routing", "apply", "", routing))
        rt.routing_keys[ref] = routing_key


def _blocked_note(
    decision: Decision,
    blocks: Mapping[str, planner.PendingBlock],
    in_force: set[str],
    timeout: float,
) -> Decision:
    """The engine sees a blocked module as one without room for this deployment ("insufficient
    ..., full"): say it is blocked, and until when."""
    which = ", ".join(
        f"{m} until {b.until:%H:%M:%SZ}"
        for m in sorted(in_force)
        if (b := blocks.get(m)) is not None and b.until is not None
    )
    note = (
        f"Blocked for this deployment, not full: {which} (its pods stayed Pending longer "
        f"than {timeout:.0f}s; retried then)."
    )
    return dataclasses.replace(decision, message=f"{decision.message} {note}".strip())


_NONE_1D = np.zeros(0)
_NONE_2D = np.zeros((0, 0))


def _slim(ws: WorkloadState) -> WorkloadState:
    """What a remembered decision needs of its workload state (regions, eligible pools, the
    binding), without the per-module arrays: 5,000 deployments on 1,000 modules would hold
    hundreds of MB of them between cycles. `_with_rtt` restores the RTT rows."""
    return dataclasses.replace(
        ws,
        rtt=None,
        rtt_measured=None,
        capacity=_NONE_1D.astype(np.int64),
        gpu_capacity=_NONE_1D.astype(np.int64),
        module_verdicts=[],
        region_verdicts=[],
        module_ok=_NONE_1D.astype(np.bool_),
        static_ok=_NONE_2D.astype(np.bool_),
        feasible=_NONE_2D.astype(np.bool_),
        feasible_any=_NONE_1D.astype(np.bool_),
        cost=_NONE_2D,
        latency_cost=_NONE_2D,
        carbon_cost=_NONE_1D,
        reliability_cost=_NONE_1D,
    )


def _eligible(fleet: FleetState, workload: WorkloadView) -> BoolArray:
    """The pools a replica of this shape may use on this cycle's fleet (cached per shape)."""
    shape = (workload.gpu_models, workload.min_gpu_memory_gib, workload.gpus_per_replica)
    hit = fleet.cache.get(("eligible", shape))
    if isinstance(hit, np.ndarray):
        return hit
    out = fleet.cache[("eligible", shape)] = eligible_pools(fleet, workload)
    return out


def _with_rtt(ws: WorkloadState, ctx: FleetContext) -> WorkloadState:
    """A slim state with this cycle's RTT rows (cached per location in the fleet state) and
    score terms: what status, carbon accounting and decision records read of it."""
    regions = ws.workload.regions
    out = dataclasses.replace(ws)
    if regions:
        rows = [ctx.fleet.region_rtt(r.name, r.latitude, r.longitude)[0] for r in regions]
        out.rtt = np.vstack(rows)
    run_scores(ctx.fleet, out)
    return out


def _placement_account(
    status: InferenceDeploymentStatus, ws: WorkloadState, ctx: FleetContext
) -> tuple[float, float | None]:
    """gCO2e/h and replica-weighted mean RTT (ms) of the placement in `status`."""
    fleet = ctx.fleet
    grams = 0.0
    rtt_sum, rtt_n = 0.0, 0
    regions = {n: r for r, n in enumerate(ws.region_names)}
    for p in status.placements:
        m = fleet.index.get(p.module)
        if m is None:
            continue
        module = fleet.modules[m]
        power = {pool.model: pool.power_w for pool in module.pools}
        default_w = min(power.values(), default=0.0)
        watts = sum(n * power.get(model, default_w) for model, n in (p.gpus or {}).items())
        grams += watts * float(fleet.pue[m]) * float(fleet.carbon[m]) / 1000.0
        if ws.rtt is not None:
            for region, n in p.regions.items():
                r = regions.get(region)
                if r is not None and n > 0:
                    rtt_sum += n * float(ws.rtt[r, m])
                    rtt_n += n
    return grams, (rtt_sum / rtt_n if rtt_n else None)


def carbon_account(
    status: InferenceDeploymentStatus,
    ws: WorkloadState,
    ctx: FleetContext,
    ledger: Ledger,
    workload: WorkloadView,
    decision: Decision,
    previous: CarbonStatus | None = None,
) -> CarbonStatus:
    """status.carbon: the placement now against a latency-only solve on the same free GPUs.

    `previous` reuses the last counterfactual (one engine solve less; the caller refreshes it
    when the placement changes and every resyncInterval)."""
    grams, rtt = _placement_account(status, ws, ctx)
    if previous is not None:
        blind_grams = previous.latency_only_grams_per_hour
        blind_rtt = previous.latency_only_mean_rtt_ms
    elif workload.carbon_weight == 0:
        blind_grams, blind_rtt = grams, rtt  # it is carbon-blind already
    else:
        blind_decision, _ = ledger.place(latency_only(workload), ctx.policies, explain_all=False)
        blind_grams = grams_per_hour(ctx.fleet, blind_decision)
        blind_rtt = mean_rtt_ms(blind_decision)
    return CarbonStatus(
        grams_per_hour=round(grams, 3),
        latency_only_grams_per_hour=round(blind_grams, 3),
        mean_rtt_ms=None if rtt is None else round(rtt, 3),
        latency_only_mean_rtt_ms=None if blind_rtt is None else round(blind_rtt, 3),
    )


def _fits(
    ledger: Ledger,
    workload: WorkloadView,
    result: planner.Plan,
    ctx: FleetContext,
    bound: Mapping[tuple[str, str], int],
    gpus_per_replica: int,
) -> bool:
    """Whether the planned placement fits what is free (the engine keeps it whole)."""
    stepped = dataclasses.replace(
        workload,
        current=planner.as_current(result.step.cells, observed_pools(bound, gpus_per_replica)),
    )
    decision, _ = ledger.place(stepped, ctx.policies)
    return decision.kept_current


def member_priority_class(
    infd: InferenceDeployment, snapshot: HubSnapshot
) -> dict[str, Any] | None:
    """The hub's PriorityClass the deployment names, as the object to apply in a member."""
    name = infd.spec.priority_class_name
    if not name or name in SYSTEM_CLASSES or name not in snapshot.priority_classes:
        return None
    value, policy, _ = snapshot.priority_classes[name]
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "aifactory-operator"},
        },
        "value": value,
        "preemptionPolicy": policy,
        "globalDefault": False,
        "description": "Copied from the hub by aifactory-operator for InferenceDeployments.",
    }


def _pc(infd: InferenceDeployment) -> str | None:
    return getattr(infd.spec, "priority_class_name", None)


def _cluster_key(targets: Mapping[str, MemberTarget], module: str) -> str | None:
    t = targets.get(module)
    return None if t is None else t.cluster_key


def _routing_configmap(
    infd: InferenceDeployment,
    status: InferenceDeploymentStatus,
    targets: Mapping[str, MemberTarget],
) -> dict[str, Any] | None:
    """The routing table as a ConfigMap a global load balancer can consume."""
    import json

    def cluster(module: str) -> str:
        t = targets.get(module)
        if t is None or t.is_hub:
            return "hub"
        return t.cluster_key.split("/")[1] if "/" in t.cluster_key else t.cluster_key

    table = [
        {
            "region": r.region,
            "targets": [
                {
                    "module": t.module,
                    "weight": t.weight,
                    "cluster": cluster(t.module),
                    "service": f"{member_object_name(infd.name, t.module)}.{infd.namespace}.svc",
                }
                for t in r.modules
            ],
        }
        for r in status.routing
    ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{infd.name}-routing",
            "namespace": infd.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "aifactory-operator",
                "aifactory.dev/inference-deployment": infd.name,
            },
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "InferenceDeployment",
                    "name": infd.name,
                    "uid": infd.metadata.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {"routing.json": json.dumps(table, indent=2, sort_keys=True)},
    }


def _owned_everywhere(
    ref: str,
    views: Mapping[str, ClusterView],
    replicas: Mapping[str, Mapping[str, Mapping[str, MemberReplicas]]],
) -> tuple[list[tuple[str, str]], list[str]]:
    """(cluster key, module) of the deployment's member workloads in known clusters, and the
    clusters we cannot see that may still hold some.

    A cluster that answers but whose caches are still listing (an operator just restarted)
    is unknown even when its empty cache shows nothing: objects a killed predecessor wrote
    appear only once the listing completes, and dropping the finalizer before would orphan
    them. A cluster that never answered and shows nothing is not waited for (the deletion
    would stall on every outage); `_plan_deletion`'s give-up covers what it may hold.
    """
    known: list[tuple[str, str]] = []
    unknown: list[str] = []
    for key, view in views.items():
        mods = [m for m, r in replicas.get(key, {}).get(ref, {}).items() if r.workload is not None]
        if not mods:
            if view.reachable and not view.synced:
                unknown.append(key)
            continue
        if view.synced and view.reachable:
            known.extend((key, m) for m in mods)
        else:
            unknown.append(key)
    return known, unknown


def _plan_deletion(
    rt: Runtime,
    infd: InferenceDeployment,
    views: Mapping[str, ClusterView],
    replicas: Mapping[str, Mapping[str, Mapping[str, MemberReplicas]]],
    targets: Mapping[str, MemberTarget],
    out: CycleResult,
    now: datetime,
) -> None:
    """The finalizer's job: remove every member object, then the finalizer."""
    ref = infd.ref
    known, unknown = _owned_everywhere(ref, views, replicas)
    out.settled[ref] = False
    for key, module in known:
        target = next((t for t in targets.values() if t.cluster_key == key), None)
        if target is None:
            continue
        out.jobs.append(
            Job(
                ref,
                target,
                planner.MemberAction("delete", module, 0, "InferenceDeployment deleted"),
            )
        )
    if FINALIZER not in infd.metadata.finalizers:
        return
    waited = (
        (now - infd.metadata.deletion_timestamp).total_seconds()
        if infd.metadata.deletion_timestamp
        else 0
    )
    give_up = bool(unknown) and not known and waited > max(60.0, 6 * rt.settings.heartbeat_timeout)
    if (not known and not unknown) or give_up:
        if rt.accountability is not None:
            out.records.extend(
                rt.accountability.capture_deletion(infd, rt.decided.get(ref) or infd.status, now)
            )
        if give_up:
            out.events.append(
                _event(
                    infd,
                    planner.EventSpec(
                        "Warning",
                        "CleanupIncomplete",
                        f"clusters {', '.join(sorted(unknown))} stayed unreachable; their member "
                        "objects are left behind and are removed when they answer again (they "
                        "carry the label aifactory.dev/inference-deployment)",
                    ),
                )
            )
        out.writes.append(finalizer_write(infd, add=False))
        out.forgotten.append(ref)


def _plan_invalid(
    rt: Runtime,
    inv: Any,
    views: Mapping[str, ClusterView],
    replicas: Mapping[str, Mapping[str, Mapping[str, MemberReplicas]]],
    targets: Mapping[str, MemberTarget],
    out: CycleResult,
    now: datetime,
) -> None:
    """An object the models reject: say so on it; nothing moves (its replicas stay)."""
    ref = inv.key
    out.settled[ref] = True
    cond = Condition(
        type=planner.STALLED,
        status=ConditionStatus.TRUE,
        reason="InvalidSpec",
        message=planner._clip(f"the operator cannot read this object: {inv.message}"),
        observed_generation=inv.generation,
        last_transition_time=now,
    )
    body = {
        "status": {
            "observedGeneration": inv.generation,
            "conditions": [
                cond.model_dump(by_alias=True, mode="json", exclude_none=True),
                Condition(
                    type=planner.READY,
                    status=ConditionStatus.FALSE,
                    reason="InvalidSpec",
                    message="see the Stalled condition",
                    observed_generation=inv.generation,
                    last_transition_time=now,
                ).model_dump(by_alias=True, mode="json", exclude_none=True),
            ],
        }
    }
    previous = rt.written.get(ref, {}).get("status", {})
    if [c.get("reason") for c in previous.get("conditions", [])] != ["InvalidSpec", "InvalidSpec"]:
        out.writes.append(Write(ref, "status", status_path(ref) + "/status", body))
    del views, replicas, targets


def _fleet_workload(
    rt: Runtime, d: InferenceDeployment, snapshot: HubSnapshot, ctx: FleetContext
) -> tuple[WorkloadView, tuple[tuple[str, str, int], ...]]:
    """One deployment as the fleet solve sees it (live demand, running placement)."""
    st = rt.decided.get(d.ref) or d.status
    dd = d.model_copy(update={"status": st})
    eff = _demand(dd, rt.demand.get(d.ref)).model_copy(update={"status": st})
    cells = planner.cells_of(st.placements if st else [], has_demand=bool(d.spec.demand.regions))
    bound = ctx.owned.get(d.ref, {})
    wl = workload_view(eff, snapshot.namespace_labels.get(d.namespace))
    wl = dataclasses.replace(
        wl,
        current=planner.as_current(cells, observed_pools(bound, d.spec.resources.gpus_per_replica)),
    )
    if rt.accountability is not None:
        wl = rt.accountability.restrict(d.ref, wl)
    return wl, _cells_key(cells)


def fleet_plan(rt: Runtime, snapshot: HubSnapshot, views: Mapping[str, ClusterView]) -> FleetPlan:
    """The rebalancer's fleet-wide solve on the current snapshot (runs in its own thread)."""
    now = datetime.now(UTC)
    snapshot = with_tier_demand(rt, snapshot)  # one solve sees every router's tiers together
    targets, _ = _targets(rt, snapshot)
    cluster_of = {m: t.cluster_key for m, t in targets.items()}
    selectors = {m: dict(t.node_selector) for m, t in targets.items()}
    ctx = build_fleet(
        snapshot,
        views,
        cluster_of,
        selectors,
        now,
        toleration=rt.settings.toleration_seconds,
        settings=placement_settings(rt),
        rtt=rt.rtt_table,
    )
    workloads = []
    started: dict[str, tuple[tuple[str, str, int], ...]] = {}
    for d in snapshot.deployments:
        if d.metadata.deletion_timestamp is not None:
            continue
        try:
            wl, cells_key = _fleet_workload(rt, d, snapshot, ctx)
        except Exception as exc:  # one object the engine cannot model never stops the plan
            log.warning("rebalancer: leaving %s out of the fleet plan: %s", d.ref, exc)
            continue
        workloads.append(wl)
        started[d.ref] = cells_key
    # capacity the fleet solve may hand out: everything but other tenants' pods (ours are
    # all re-placed by this solve)
    ledger = Ledger(ctx, {})
    bound_total: dict[tuple[str, str], int] = {}
    for h in ctx.owned.values():
        for key, g in h.items():
            bound_total[key] = bound_total.get(key, 0) + g
    for key, g in bound_total.items():
        p = ctx.pool_index.get(key)
        if p is not None:
            ledger.pool_free[p] += g
    modules = []
    for mv in ctx.fleet.modules:
        pools = []
        for pool in mv.pools:
            p = ctx.pool_index.get((mv.name, pool.model))
            free = int(ledger.pool_free[p]) if p is not None else pool.count
            pools.append(dataclasses.replace(pool, allocated=max(0, pool.count - free)))
        modules.append(dataclasses.replace(mv, pools=tuple(pools)))
    result = place_fleet(workloads, modules, ctx.policies, settings=placement_settings(rt))
    return FleetPlan(
        made_at=now,
        decisions={d.deployment: d for d in result.placements},
        started_from=started,
        solver=result.solver,
        cost=result.total_cost,
        lower_bound=result.lower_bound,
    )


__all__ = ["CycleResult", "Event", "Write", "fleet_plan", "run_cycle"]
