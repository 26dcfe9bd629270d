"""InferenceDeployment: place with the engine, apply to member clusters, report in status.

One reconcile, run on every change and every statusInterval, does all of it idempotently:
  1. place the deployment against the fleet (the engine keeps the running placement unless a
     hard rule breaks or the gain beats the hysteresis);
  2. server-side apply each chosen module's Deployment and Service;
  3. list what the operator owns in every member cluster, by label, and delete what no
     placement wants, but only once the new placement is ready (make-before-break) unless the
     old module is unusable or forbidden;
  4. aggregate member readiness into status and conditions.
Nothing depends on remembering earlier runs, so a killed operator converges on restart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from aifactory import metrics
from aifactory.api import (
    Condition,
    ConditionStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    ModulePlacement,
    RegionRouting,
    RouteTarget,
    Unsatisfied,
    set_condition,
)
from aifactory.clusters import (
    ClusterAccessError,
    MemberTarget,
    apply,
    apply_module,
    delete_named,
    list_owned,
    member_object_name,
)
from aifactory.clusters.workload import MemberWorkload
from aifactory.placement import Decision, place_one
from aifactory.signals.demand import DemandSignalError, apply_demand, fetch_demand

from .rebalance import Plan, Step, make_plan, placement_key, step_towards, with_current
from .runtime import DEPLOYMENTS, GROUP, SETTINGS, VERSION, runtime
from .world import World, engine_views, fleet_views, from_kwargs, placement_settings, usable

log = logging.getLogger(__name__)

_CLUSTER_ERRORS = (ClusterAccessError, ApiException, urllib3.exceptions.HTTPError, OSError)


@dataclass
class MemberState:
    """What the member clusters showed during one reconcile."""

    observed: dict[str, MemberWorkload] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)
    kept_for_handover: list[str] = field(default_factory=list)
    #: ready replicas still serving on modules being handed over (old placement)
    handover_ready: int = 0
    removed: list[str] = field(default_factory=list)


def _targets(world: World) -> tuple[dict[str, MemberTarget], set[str]]:
    targets: dict[str, MemberTarget] = {}
    failed: set[str] = set()
    members = runtime().members
    for m in world.modules:
        try:
            targets[m.name] = members.target(m)
        except ClusterAccessError:
            failed.add(m.name)
    return targets, failed


def converge_members(world: World, infd: InferenceDeployment, decision: Decision) -> MemberState:
    """Make member clusters match the decision, make-before-break; returns what was observed.

    Observe first (one listing per distinct cluster), then apply. Until the new placement is
    fully ready, modules that lose replicas keep their old count and modules dropped from the
    placement keep running, as long as they are healthy and still allowed: users keep being
    served while the new replicas start. Unusable or forbidden modules are drained at once.
    """
    state = MemberState()
    targets, state.unreachable = _targets(world)
    wanted = {a.module: a.replicas for a in decision.assignments}
    clusters: dict[str, MemberTarget] = {}
    for name in sorted(targets):
        clusters.setdefault(targets[name].cluster_key, targets[name])
    orphans: list[tuple[MemberTarget, MemberWorkload]] = []
    for key, target in sorted(clusters.items()):
        try:
            owned = list_owned(target.api, infd)
        except _CLUSTER_ERRORS:
            state.unreachable |= {n for n, t in targets.items() if t.cluster_key == key}
            continue
        for w in owned:
            home = targets.get(w.module)
            if w.module in wanted and home is not None and home.cluster_key == key:
                state.observed[w.module] = w
            else:
                orphans.append((target, w))
    now = datetime.now(UTC)

    def may_hold(module_name: str) -> bool:
        module = world.module(module_name)
        forbidden = decision.explanation.get(module_name, "").startswith("rejected")
        return (
            module is not None
            and not forbidden
            and usable(module, now, SETTINGS.toleration_seconds)
        )

    ready_new = sum(min(w.ready_replicas, wanted[m]) for m, w in state.observed.items())
    handed_over = ready_new >= sum(wanted.values())
    for module_name, replicas in sorted(wanted.items()):
        home, module = targets.get(module_name), world.module(module_name)
        if home is None or module is None:
            state.unreachable.add(module_name)
            continue
        seen = state.observed.get(module_name)
        if seen and seen.replicas > replicas and not handed_over and may_hold(module_name):
            state.handover_ready += max(0, seen.ready_replicas - replicas)
            replicas = seen.replicas  # shrink only once the new replicas are ready
            state.kept_for_handover.append(module_name)
        try:
            apply_module(home, infd, module, replicas)
        except _CLUSTER_ERRORS:
            state.unreachable.add(module_name)
    for target, w in orphans:
        if not handed_over and w.ready_replicas > 0 and may_hold(w.module):
            state.kept_for_handover.append(w.module)
            state.handover_ready += w.ready_replicas
            continue
        try:
            delete_named(target.api, w.namespace, w.name)
            state.removed.append(w.module)
        except _CLUSTER_ERRORS:
            state.unreachable.add(w.module)
    return state


def _cond(type_: str, ok: bool, reason: str, message: str, generation: int | None) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def build_status(
    infd: InferenceDeployment, decision: Decision, members: MemberState, now: datetime
) -> InferenceDeploymentStatus:
    """Status from the decision and what member clusters showed; pure, for tests."""
    gen = infd.metadata.generation
    placements = [
        ModulePlacement(
            module=a.module,
            replicas=a.replicas,
            regions=dict(a.regions),
            ready_replicas=min(a.replicas, members.observed[a.module].ready_replicas)
            if a.module in members.observed
            else 0,
        )
        for a in decision.assignments
    ]
    ready = sum(p.ready_replicas for p in placements)
    desired = decision.replicas
    routing: list[RegionRouting] = []
    for region in infd.spec.demand.regions:
        serving = [(p.module, p.regions.get(region.name, 0)) for p in placements]
        total = sum(k for _, k in serving)
        if total:
            routing.append(
                RegionRouting(
                    region=region.name,
                    modules=[
                        RouteTarget(module=m, weight=round(k / total, 4)) for m, k in serving if k
                    ],
                )
            )
    conditions = list(infd.status.conditions) if infd.status else []
    placed_ok = decision.unplaced_replicas == 0 and desired > 0
    placed_msg = (
        f"{decision.placed_replicas} replicas on {len(placements)} modules: "
        + ", ".join(f"{p.module} ({p.replicas})" for p in placements)
        if placed_ok
        else decision.message or "no replicas requested"
    )
    conditions = set_condition(
        conditions,
        _cond("Placed", placed_ok, "Placed" if placed_ok else "Unschedulable", placed_msg, gen),
        now=now,
    )
    ready_ok = desired > 0 and ready >= desired
    conditions = set_condition(
        conditions,
        _cond(
            "Ready",
            ready_ok,
            "ReplicasReady" if ready_ok else "ReplicasNotReady",
            f"{ready}/{desired} replicas ready",
            gen,
        ),
        now=now,
    )
    compliant = not decision.audit
    conditions = set_condition(
        conditions,
        _cond(
            "Compliant",
            compliant,
            "PoliciesSatisfied" if compliant else "AuditFindings",
            "every bound policy is satisfied" if compliant else "; ".join(decision.audit),
            gen,
        ),
        now=now,
    )
    problems = []
    if decision.unplaced_replicas:
        problems.append(f"{decision.unplaced_replicas} replicas unplaced")
    down = sorted(m for m in members.unreachable if any(p.module == m for p in placements))
    if down:
        problems.append("unreachable modules: " + ", ".join(down))
    if members.kept_for_handover:
        problems.append("handing over from: " + ", ".join(sorted(members.kept_for_handover)))
    conditions = set_condition(
        conditions,
        _cond(
            "Degraded",
            bool(problems),
            (
                "Unschedulable"
                if decision.unplaced_replicas
                else "ModuleUnreachable"
                if down
                else "Migrating"
                if members.kept_for_handover
                else "AsExpected"
            ),
            "; ".join(problems) or "all replicas placed on reachable modules",
            gen,
        ),
        now=now,
    )
    status = InferenceDeploymentStatus(
        observed_generation=gen,
        conditions=conditions,
        replicas=desired,
        # replicas still serving on modules being handed over count: users are being served
        ready_replicas=ready + members.handover_ready,
        placements=placements,
        routing=routing,
        unsatisfied=Unsatisfied(replicas=decision.unplaced_replicas, reason=decision.message)
        if decision.unplaced_replicas
        else None,
        last_rebalance_time=infd.status.last_rebalance_time if infd.status else None,
        last_moves=infd.status.last_moves if infd.status else None,
        cost=round(decision.cost, 4),
        explanation=_explanation(decision),
    )
    return status.summarized()


MAX_EXPLAINED_MODULES = 64


def _explanation(decision: Decision) -> dict[str, str]:
    """The engine's per-module reasons, bounded so status stays small on a large fleet."""
    chosen = [a.module for a in decision.assignments]
    rest = sorted(m for m in decision.explanation if m not in chosen)
    keep = (chosen + rest)[:MAX_EXPLAINED_MODULES]
    return {m: decision.explanation[m] for m in keep if m in decision.explanation}


def _changed(old: list[ModulePlacement], new: list[ModulePlacement]) -> bool:
    def key(ps: list[ModulePlacement]) -> list[tuple[str, int]]:
        return sorted((p.module, p.replicas) for p in ps if p.replicas > 0)

    return key(old) != key(new)


@dataclass(frozen=True)
class DemandReading:
    """The live demand a deployment is placed with, and how fresh it is."""

    requests_per_second: dict[str, float]
    read_at: datetime


def live_demand(
    infd: InferenceDeployment, now: datetime
) -> tuple[InferenceDeployment, Condition | None, DemandReading | None]:
    """The deployment with live demand applied, the DemandSignal condition, the reading used.

    Reads spec.demand.prometheus at most every demandPollInterval. When the source fails, the
    last good reading (kept in memory and in status.observedDemand, so it survives a restart)
    stays in force: an outage never scales a deployment to zero. Before the first good
    reading the static spec.demand values apply.
    """
    source = infd.spec.demand.prometheus
    if source is None:
        return infd, None, None
    rt = runtime()
    last: DemandReading | None = rt.demand.get(infd.ref)
    if (
        last is None
        and infd.status
        and infd.status.observed_demand
        and infd.status.demand_updated_at
    ):
        last = DemandReading(dict(infd.status.observed_demand), infd.status.demand_updated_at)
    error: DemandSignalError | None = None
    fresh = (
        last is not None and (now - last.read_at).total_seconds() < SETTINGS.demand_poll_interval
    )
    if not fresh or last is None:
        try:
            sample = fetch_demand(source, now=now)
            apply_demand(infd, sample.requests_per_second)  # validates: refuses empty samples
            last = DemandReading(dict(sample.requests_per_second), now)
            rt.demand[infd.ref] = last
        except DemandSignalError as exc:
            error = exc
            if last is not None and (
                rt.demand.get(infd.ref) is None or rt.demand[infd.ref].read_at != last.read_at
            ):
                rt.demand[infd.ref] = last
    gen = infd.metadata.generation
    if error is None:
        assert last is not None
        cond = _cond(
            "DemandSignal",
            True,
            "LiveDemand",
            "requests per second from Prometheus: "
            + ", ".join(f"{k}={v:g}" for k, v in sorted(last.requests_per_second.items())),
            gen,
        )
    elif last is not None:
        cond = _cond(
            "DemandSignal",
            False,
            error.reason,
            f"{error.message}; keeping the demand read at "
            f"{last.read_at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            gen,
        )
    else:
        cond = _cond(
            "DemandSignal",
            False,
            error.reason,
            f"{error.message}; using the static spec.demand values until a first reading",
            gen,
        )
    if last is None:
        return infd, cond, None
    return apply_demand(infd, last.requests_per_second), cond, last


def decide(world: World, infd: InferenceDeployment, now: datetime) -> tuple[Decision, Step | None]:
    """The placement to run now, and the rebalancing step that led to it (if any).

    Called under the placement lock. Between rebalances the engine runs with a hysteresis of
    100%: it keeps the running placement unless it breaks a hard rule or no longer matches the
    replicas needed. Optimisation moves come only from the fleet-wide plan, bounded by the
    disruption budget.
    """
    rt = runtime()
    settings = placement_settings()
    keep = dataclasses.replace(settings, hysteresis=1.0)
    modules, workload, policies = engine_views(world, infd, rt.reservations, now=now)
    decision = place_one(workload, modules, policies, settings=keep)
    if not decision.kept_current:
        return decision, None
    plan: Plan | None = rt.plan
    if plan is None or (now - plan.made_at).total_seconds() >= SETTINGS.rebalance_interval:
        live = {ref: r.requests_per_second for ref, r in rt.demand.items()}
        all_modules, workloads, all_policies = fleet_views(
            world, rt.reservations, now=now, demand=live
        )
        plan = rt.plan = make_plan(now, workloads, all_modules, all_policies, settings)
    target = plan.decisions.get(infd.ref)
    if (
        target is None
        or target.kept_current
        or not target.stability.startswith("replaced")
        or target.unplaced_replicas > decision.unplaced_replicas
        or plan.started_from.get(infd.ref) != placement_key(workload.current)
        or rt.adopted.get(infd.ref) == plan.made_at
    ):
        return decision, None
    rt.adopted[infd.ref] = plan.made_at
    step = step_towards(workload.current, target, SETTINGS.disruption_budget)
    if not step.moves:
        return decision, None
    moved = place_one(with_current(workload, step.placement), modules, policies, settings=keep)
    if not moved.kept_current:  # the step does not fit next to the others right now
        return decision, None
    return moved, step


def _routing_configmap(
    infd: InferenceDeployment, status: InferenceDeploymentStatus, world: World
) -> dict[str, Any]:
    """The routing table as a ConfigMap a global load balancer can consume."""

    def cluster(module: str) -> str:
        m = world.module(module)
        if m is None or m.spec.cluster.kubeconfig_secret_ref is None:
            return "hub"
        return m.spec.cluster.kubeconfig_secret_ref.name

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


def reconcile(body: kopf.Body, patch: kopf.Patch, handler_kwargs: dict[str, Any]) -> None:
    with metrics.observe("inferencedeployment"):
        infd = InferenceDeployment.from_manifest(body)
        rt = runtime()
        with rt.object_lock(infd.ref):
            world = from_kwargs(handler_kwargs)
            now = datetime.now(UTC)
            infd, demand_condition, demand = live_demand(infd, now)
            with rt.placement_lock:
                old = rt.reservations.get(infd.ref) or (
                    list(infd.status.placements) if infd.status else []
                )
                decision, step = decide(world, infd, now)
                new = [
                    ModulePlacement(module=a.module, replicas=a.replicas, regions=dict(a.regions))
                    for a in decision.assignments
                ]
                rt.reservations[infd.ref] = new
            members = converge_members(world, infd, decision)
            status = build_status(infd, decision, members, now)
            if demand_condition is not None:
                status = status.model_copy(
                    update={
                        "conditions": set_condition(status.conditions, demand_condition, now=now)
                    }
                )
            if demand is not None:
                status = status.model_copy(
                    update={
                        "observed_demand": demand.requests_per_second,
                        "demand_updated_at": demand.read_at,
                    }
                )
            if step is not None:
                moves = [f"{n} serving {r or 'all'}: {a} -> {b}" for r, a, b, n in step.moves]
                kopf.info(
                    body,
                    reason="Rebalanced",
                    message=f"moved {sum(n for *_, n in step.moves)} replicas "
                    f"(budget {SETTINGS.disruption_budget}): {'; '.join(moves)}; "
                    f"{'done' if step.complete else 'more moves next interval'}",
                )
                metrics.MIGRATIONS_TOTAL.labels(infd.ref).inc()
                status = status.model_copy(update={"last_rebalance_time": now, "last_moves": moves})
            elif _changed(old, new) and decision.placed_replicas:
                summary = ", ".join(f"{p.module} ({p.replicas})" for p in new)
                moved_modules = {p.module for p in old} != {p.module for p in new}
                reason = "Placed" if not old else ("Rescheduled" if moved_modules else "Scaled")
                why = f" ({decision.stability})" if decision.stability else ""
                kopf.info(
                    body,
                    reason=reason,
                    message=f"{decision.placed_replicas}/{decision.replicas} replicas on "
                    f"{summary}; cost {decision.cost:.2f}{why}",
                )
                if old and moved_modules:
                    metrics.MIGRATIONS_TOTAL.labels(infd.ref).inc()
                    status = status.model_copy(update={"last_rebalance_time": now})
            previous_reason = (
                infd.status.unsatisfied.reason if (infd.status and infd.status.unsatisfied) else ""
            )
            if decision.unplaced_replicas and decision.message != previous_reason:
                kopf.warn(body, reason="PlacementFailed", message=decision.message)
            for module in members.removed:
                kopf.info(
                    body,
                    reason="MemberRemoved",
                    message=f"removed member Deployment and Service from module {module}",
                )
            try:
                apply(rt.hub, _routing_configmap(infd, status, world))
            except _CLUSTER_ERRORS as exc:
                log.warning(
                    "routing ConfigMap for %s not written: %s", infd.ref, type(exc).__name__
                )
            for p in new:
                metrics.PLACED_REPLICAS.labels(infd.ref, p.module).set(p.replicas)
            metrics.UNPLACED_REPLICAS.labels(infd.ref).set(decision.unplaced_replicas)
            if decision.carbon_intensity is not None:
                metrics.DEPLOYMENT_CARBON.labels(infd.ref).set(decision.carbon_intensity)
            patch.status.update(status.model_dump(by_alias=True, mode="json", exclude_none=True))
            if infd.status and infd.status.unsatisfied and status.unsatisfied is None:
                patch.status["unsatisfied"] = None


@kopf.on.resume(GROUP, VERSION, DEPLOYMENTS)
@kopf.on.create(GROUP, VERSION, DEPLOYMENTS)
@kopf.on.update(GROUP, VERSION, DEPLOYMENTS, field="spec")
def deployment_changed(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    reconcile(body, patch, kwargs)


@kopf.timer(GROUP, VERSION, DEPLOYMENTS, interval=SETTINGS.status_interval)
def deployment_refresh(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    reconcile(body, patch, kwargs)


@kopf.on.delete(GROUP, VERSION, DEPLOYMENTS)
def deployment_deleted(body: kopf.Body, retry: int, **kwargs: Any) -> None:
    """Remove every member object, found by label in every cluster (the finalizer's job)."""
    infd = InferenceDeployment.from_manifest(body)
    rt = runtime()
    world = from_kwargs(kwargs)
    targets, failed = _targets(world)
    clusters: dict[str, MemberTarget] = {}
    for name in sorted(targets):
        clusters.setdefault(targets[name].cluster_key, targets[name])
    for key, target in sorted(clusters.items()):
        try:
            for w in list_owned(target.api, infd):
                delete_named(target.api, w.namespace, w.name)
        except _CLUSTER_ERRORS:
            failed |= {n for n, t in targets.items() if t.cluster_key == key}
    with rt.placement_lock:
        placed = rt.reservations.pop(infd.ref, None) or (
            list(infd.status.placements) if infd.status else []
        )
        rt.demand.pop(infd.ref, None)
        rt.adopted.pop(infd.ref, None)
    metrics.forget_deployment(infd.ref, [p.module for p in placed])
    if failed:
        names = ", ".join(sorted(failed))
        if retry < 6:
            raise kopf.TemporaryError(
                f"cannot reach modules {names} to remove member objects", delay=10
            )
        kopf.warn(
            body,
            reason="CleanupIncomplete",
            message=f"modules {names} stayed unreachable; their member objects are left "
            "behind and carry the label aifactory.dev/inference-deployment",
        )
