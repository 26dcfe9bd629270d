"""AIFactoryModule: heartbeat the module's cluster and report what it can run.

Reachable says whether the last attempt to talk to the cluster worked; Ready says whether the
module can take workloads, and only turns False once no heartbeat succeeded for
heartbeatTimeout, so a blip does not move replicas. Capacity is observed from the nodes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from aifactory import metrics
from aifactory.api import (
    AIFactoryModule,
    Condition,
    ConditionStatus,
    GpuPoolStatus,
    ModuleCapacityStatus,
    set_condition,
)
from aifactory.clusters import ClusterAccessError, observe_capacity
from aifactory.signals.energy import declared_energy, operator_owns_energy

from .runtime import GROUP, MODULES, SETTINGS, VERSION, runtime

log = logging.getLogger(__name__)

REASON_HEARTBEAT_OK = "HeartbeatSucceeded"
REASON_UNREACHABLE = "ClusterUnreachable"
REASON_API_ERROR = "ClusterAPIError"
REASON_READY = "GpusAvailable"
REASON_NO_GPUS = "NoGpuNodes"
REASON_HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
REASON_NEVER_SEEN = "NoHeartbeatYet"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def heartbeat_status(module: AIFactoryModule, now: datetime) -> dict[str, Any]:
    """Talk to the module's cluster once and return the status to write (never raises for
    cluster trouble: that is what the conditions are for)."""
    status = module.status
    conditions = list(status.conditions) if status else []
    last_heartbeat = status.last_heartbeat_time if status else None
    out: dict[str, Any] = {"observedGeneration": module.metadata.generation}
    try:
        target = runtime().members.target(module)
        pools = observe_capacity(target)
    except ClusterAccessError as exc:
        reachable = Condition(
            type="Reachable", status=ConditionStatus.FALSE, reason=exc.reason, message=exc.message
        )
        pools = None
    except ApiException as exc:
        reachable = Condition(
            type="Reachable",
            status=ConditionStatus.FALSE,
            reason=REASON_API_ERROR,
            message=f"cluster answered HTTP {exc.status} {exc.reason or ''}".strip(),
        )
        pools = None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reachable = Condition(
            type="Reachable",
            status=ConditionStatus.FALSE,
            reason=REASON_UNREACHABLE,
            message=f"cluster did not answer ({type(exc).__name__})",
        )
        pools = None
    else:
        reachable = Condition(
            type="Reachable",
            status=ConditionStatus.TRUE,
            reason=REASON_HEARTBEAT_OK,
            message="cluster answered",
        )
        last_heartbeat = now
        out["lastHeartbeatTime"] = _iso(now)
    conditions = set_condition(conditions, reachable, now=now)

    if pools is not None:
        capacity = ModuleCapacityStatus(
            gpus=[
                GpuPoolStatus(
                    model=p.model, gpus_allocatable=p.allocatable, gpus_allocated=p.allocated
                )
                for p in pools
            ]
        )
        out["capacity"] = capacity.model_dump(by_alias=True, mode="json")
        total = sum(p.allocatable for p in pools)
        out["gpusTotal"] = total
        out["gpusFree"] = max(0, total - sum(p.allocated for p in pools))
        ready_nodes = sum(p.ready_nodes for p in pools)
        if ready_nodes:
            ready = Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason=REASON_READY,
                message=f"{total} GPUs on {ready_nodes} ready nodes",
            )
        else:
            ready = Condition(
                type="Ready",
                status=ConditionStatus.FALSE,
                reason=REASON_NO_GPUS,
                message="no ready node with nvidia.com/gpu allocatable",
            )
        for p in pools:
            metrics.FLEET_GPUS.labels(module.name, "allocatable").set(p.allocatable)
            metrics.FLEET_GPUS.labels(module.name, "allocated").set(p.allocated)
    elif last_heartbeat is None:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason=REASON_NEVER_SEEN,
            message=f"no successful heartbeat yet: {reachable.message}",
        )
    elif (now - last_heartbeat).total_seconds() >= SETTINGS.heartbeat_timeout:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason=REASON_HEARTBEAT_TIMEOUT,
            message=f"no heartbeat since {_iso(last_heartbeat)}: {reachable.message}",
        )
    else:  # within the timeout: keep what Ready said
        previous = module.condition("Ready")
        ready = previous or Condition(
            type="Ready",
            status=ConditionStatus.UNKNOWN,
            reason=REASON_UNREACHABLE,
            message=reachable.message,
        )
    conditions = set_condition(conditions, ready, now=now)
    energy = status.energy if status else None
    if operator_owns_energy(energy):
        # the schedule (per local hour) or the spec; an external feed owns status.energy once
        # it writes it. Written only on a change, so a heartbeat never races a feed's patch.
        reading = declared_energy(module, now)
        if energy is None or (energy.carbon_intensity, energy.renewable_share, energy.source) != (
            reading.carbon_intensity,
            reading.renewable_share,
            reading.source,
        ):
            out["energy"] = reading.to_status(now).model_dump(
                by_alias=True, mode="json", exclude_none=True
            )
    metrics.MODULE_READY.labels(module.name).set(1 if ready.status is ConditionStatus.TRUE else 0)
    out["conditions"] = [
        c.model_copy(update={"observed_generation": module.metadata.generation}).model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
        for c in conditions
    ]
    return out


def _reconcile(body: kopf.Body, patch: kopf.Patch) -> None:
    with metrics.observe("module"):
        module = AIFactoryModule.from_manifest(body)
        patch.status.update(heartbeat_status(module, datetime.now(UTC)))


@kopf.on.resume(GROUP, VERSION, MODULES)
@kopf.on.create(GROUP, VERSION, MODULES)
@kopf.on.update(GROUP, VERSION, MODULES, field="spec")
def module_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _reconcile(body, patch)


@kopf.timer(GROUP, VERSION, MODULES, interval=SETTINGS.heartbeat_interval)
def module_heartbeat(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _reconcile(body, patch)
