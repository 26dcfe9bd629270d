"""The fleet as the operator last saw it, kept in memory by kopf indexes.

Every reconcile needs the whole fleet (modules, policies, other deployments, namespace labels);
kopf keeps these in memory from its watches, so a reconcile costs no extra API calls and the
handlers only start once every index is filled.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from aifactory.api import (
    AIFactoryModule,
    ConditionStatus,
    InferenceDeployment,
    ModulePlacement,
    SovereigntyPolicy,
)
from aifactory.labels import DRAIN_ANNOTATION
from aifactory.placement import ModuleView, PlacementSettings, PolicyView, WorkloadView
from aifactory.placement.from_api import held_gpus, module_view, policy_view, workload_view
from aifactory.signals.demand import apply_demand

from .runtime import DEPLOYMENTS, GROUP, MODULES, POLICIES, SETTINGS, VERSION

log = logging.getLogger(__name__)


@kopf.index(GROUP, VERSION, MODULES)
def module_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: dict(body)}


@kopf.index(GROUP, VERSION, POLICIES)
def policy_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: dict(body)}


@kopf.index(GROUP, VERSION, DEPLOYMENTS)
def deployment_index(name: str, body: kopf.Body, **kwargs: Any) -> dict[str, Any]:
    return {f"{kwargs.get('namespace')}/{name}": dict(body)}


@kopf.index("", "v1", "namespaces")
def namespace_index(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
    return {name: dict(labels)}


def _latest(index: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for key, store in index.items():
        for value in store:
            yield key, value
            break


def _parse(kind: type[Any], raw: dict[str, Any]) -> Any | None:
    try:
        return kind.from_manifest(raw)
    except ValidationError as exc:
        # the CRD schema admits it, the models do not: an operator/CRD version skew
        name = raw.get("metadata", {}).get("name")
        log.warning(
            "ignoring %s %s that the models reject: %s", kind.__name__, name, exc.errors()[0]["msg"]
        )
        return None


@dataclass(frozen=True)
class World:
    """One consistent snapshot of what placement depends on."""

    modules: tuple[AIFactoryModule, ...]
    policies: tuple[SovereigntyPolicy, ...]
    deployments: tuple[InferenceDeployment, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]

    def module(self, name: str) -> AIFactoryModule | None:
        return next((m for m in self.modules if m.name == name), None)


_NONE: Mapping[str, Any] = {}


def snapshot(
    module_index: Mapping[str, Any] = _NONE,
    policy_index: Mapping[str, Any] = _NONE,
    deployment_index: Mapping[str, Any] = _NONE,
    namespace_index: Mapping[str, Any] = _NONE,
) -> World:
    """The fleet from kopf's indexes (handlers receive them as keyword arguments by name)."""
    modules = [m for _, raw in _latest(module_index) if (m := _parse(AIFactoryModule, raw))]
    policies = [p for _, raw in _latest(policy_index) if (p := _parse(SovereigntyPolicy, raw))]
    deps = [d for _, raw in _latest(deployment_index) if (d := _parse(InferenceDeployment, raw))]
    return World(
        modules=tuple(sorted(modules, key=lambda m: m.name)),
        policies=tuple(sorted(policies, key=lambda p: p.name)),
        deployments=tuple(sorted(deps, key=lambda d: d.ref)),
        namespace_labels={k: v for k, v in _latest(namespace_index)},
    )


def from_kwargs(kwargs: Mapping[str, Any]) -> World:
    """The snapshot from a kopf handler's keyword arguments (kopf passes indexes by name)."""
    return snapshot(
        kwargs.get("module_index", _NONE),
        kwargs.get("policy_index", _NONE),
        kwargs.get("deployment_index", _NONE),
        kwargs.get("namespace_index", _NONE),
    )


def placement_settings() -> PlacementSettings:
    s = SETTINGS
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


def draining(module: AIFactoryModule) -> bool:
    """`aifactoryctl drain` asked for every replica to leave this module."""
    return module.metadata.annotations.get(DRAIN_ANNOTATION) == "true"


def placeable(module: AIFactoryModule, now: datetime) -> bool:
    """What the engine sees as ready: usable and not draining.

    A draining module counts as not ready, so the running placement breaks a hard rule and is
    re-placed; it stays usable for the member side, which keeps it serving until the new
    replicas are ready (make-before-break).
    """
    return usable(module, now, SETTINGS.toleration_seconds) and not draining(module)


def usable(module: AIFactoryModule, now: datetime, toleration: float) -> bool:
    """Ready, or NotReady for less than tolerationSeconds (its replicas stay where they are).

    A module never seen by a heartbeat is not usable: the operator has not proven it exists.
    """
    cond = module.condition("Ready") if module.status else None
    if cond is None:
        return False
    if cond.status is ConditionStatus.TRUE:
        return True
    since = cond.last_transition_time
    return since is not None and (now - since).total_seconds() < toleration


def with_placements(
    deployment: InferenceDeployment, placements: list[ModulePlacement] | None
) -> InferenceDeployment:
    """The deployment as if its status showed `placements` (the reservation)."""
    if placements is None:
        return deployment
    status = (
        deployment.status.model_copy(update={"placements": placements})
        if (deployment.status)
        else None
    )
    if status is None:
        from aifactory.api import InferenceDeploymentStatus

        status = InferenceDeploymentStatus(placements=placements)
    return deployment.model_copy(update={"status": status})


def fleet_views(
    world: World,
    reservations: Mapping[str, list[ModulePlacement]],
    *,
    now: datetime | None = None,
    demand: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[list[ModuleView], list[WorkloadView], list[PolicyView]]:
    """Engine inputs for re-solving every deployment together (the rebalancer).

    Every deployment's own GPUs are taken out of the discovered allocation, since all of them
    are being placed again; what remains is other tenants' usage.
    """
    now = now or datetime.now(UTC)
    demand = demand or {}
    deps = [
        with_placements(
            apply_demand(d, demand[d.ref]) if demand.get(d.ref) else d, reservations.get(d.ref)
        )
        for d in world.deployments
    ]
    held = held_gpus(world.modules, deps)
    modules = [
        dataclasses.replace(
            module_view(m, held=held.get(m.name), assume_ready=False),
            ready=placeable(m, now),
        )
        for m in world.modules
    ]
    workloads = [workload_view(d, world.namespace_labels.get(d.namespace)) for d in deps]
    return modules, workloads, [policy_view(p) for p in world.policies]


def engine_views(
    world: World,
    target: InferenceDeployment,
    reservations: Mapping[str, list[ModulePlacement]],
    *,
    now: datetime | None = None,
) -> tuple[list[ModuleView], WorkloadView, list[PolicyView]]:
    """Engine inputs for placing `target` against everything else in the fleet.

    GPUs other deployments hold are counted from their placements (reservation first, then
    status) as well as from discovery, whichever is larger: discovery lags the operator's own
    decisions by a heartbeat, and the engine must never hand out a GPU twice.
    """
    now = now or datetime.now(UTC)
    deps = {d.ref: with_placements(d, reservations.get(d.ref)) for d in world.deployments}
    target = (
        with_placements(target, reservations.get(target.ref))
        if target.ref in reservations
        else target
    )
    deps[target.ref] = target
    others = [d for k, d in deps.items() if k != target.ref]
    held_target = held_gpus(world.modules, [target])
    held_others = held_gpus(world.modules, others)
    views = []
    for m in world.modules:
        mv = module_view(m, held=held_target.get(m.name), assume_ready=False)
        reserved = held_others.get(m.name, {})
        pools = tuple(
            dataclasses.replace(
                p, allocated=min(p.count, max(p.allocated, reserved.get(p.model, 0)))
            )
            for p in mv.pools
        )
        views.append(dataclasses.replace(mv, pools=pools, ready=placeable(m, now)))
    workload = workload_view(target, world.namespace_labels.get(target.namespace))
    return views, workload, [policy_view(p) for p in world.policies]
