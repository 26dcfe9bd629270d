"""AIFactoryModule status: reachability, readiness, capacity, energy. Pure.

Reachable says whether the module's cluster answered its last probe; Ready says whether the
module can take workloads and only turns False once no heartbeat succeeded for
heartbeatTimeout, so a blip does not move replicas (and replicas stay tolerationSeconds more
after that, see `fleet.module_use`). Capacity is what the module's usable nodes offer and what
every pod bound to them requests (`clusters.observe`).

Energy: the operator owns `status.energy` while its source is the spec or the schedule (their
values apply at once); an external feed owns it otherwise, and its readings become effective
(`status.effectiveEnergy`, what placement uses) only once a change has lasted the signal
tolerance (`signals.smoothing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aifactory.api import (
    AIFactoryModule,
    Condition,
    ConditionStatus,
    EffectiveEnergyStatus,
    GpuPoolStatus,
    ModuleCapacityStatus,
    set_condition,
)
from aifactory.clusters import ModuleObservation
from aifactory.signals.carbon import EffectiveEnergy
from aifactory.signals.energy import declared_energy, operator_owns_energy
from aifactory.signals.smoothing import Smoothed, smooth

REASON_HEARTBEAT_OK = "HeartbeatSucceeded"
REASON_UNREACHABLE = "ClusterUnreachable"
REASON_READY = "GpusAvailable"
REASON_NO_GPUS = "NoGpuNodes"
REASON_HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
REASON_NEVER_SEEN = "NoHeartbeatYet"
#: Probe reasons only a change can fix (the kubeconfig Secret): kstatus Stalled.
PERMANENT_REASONS = frozenset(
    {
        "InvalidKubeconfig",
        "SecretNotFound",
        "SecretForbidden",
        "SecretUnreadable",
        "KubeconfigKeyMissing",
        "InvalidClusterRef",
    }
)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Probe:
    """The module's cluster as the monitor found it this round."""

    #: The cluster answered (and its kubeconfig, if any, is usable).
    reachable: bool
    #: CamelCase reason and message when it did not.
    reason: str = REASON_HEARTBEAT_OK
    message: str = "cluster answered"
    #: Capacity from the cluster's caches (None: never listed).
    observation: ModuleObservation | None = None
    #: When the cluster last answered (in memory; status.lastHeartbeatTime after a restart).
    last_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignalSettings:
    heartbeat_timeout: float = 30.0
    tolerance_s: float = 60.0
    min_readings: int = 2


@dataclass(frozen=True)
class ModuleOutcome:
    """The status fields to write (only what changed), and the smoothing state to keep."""

    patch: dict[str, Any]
    smoothing: Mapping[str, Smoothed] = field(default_factory=dict)
    ready: bool = False


def _dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class RawEnergy:
    """This round's energy reading, before the signal tolerance, and what to write."""

    carbon_intensity: float
    renewable_share: float
    #: status.energy to write (None: leave it as it is)
    patch: dict[str, Any] | None = None
    condition: Condition | None = None


def _raw_energy(
    module: AIFactoryModule,
    energy: Any,
    signal_energy: EffectiveEnergy | None,
    now: datetime,
) -> tuple[RawEnergy, bool]:
    """The reading of this round and whether it is live (tolerated before it takes effect).

    Three owners of status.energy: the module's own spec.energy.signal (the operator polls it;
    live), the spec or schedule (declared; at once), or an external feed writing status.energy
    with its own source (live; the operator never overwrites it).
    """
    if module.spec.energy.signal is not None and signal_energy is not None:
        wanted = _dump(signal_energy.to_status(now))
        same = energy is not None and _dump(energy) | {"updatedAt": None} == wanted | {
            "updatedAt": None
        }
        return (
            RawEnergy(
                signal_energy.carbon_intensity,
                signal_energy.renewable_share,
                None if same else wanted,
                signal_energy.condition(),
            ),
            signal_energy.signal is not None,
        )
    if operator_owns_energy(energy):
        reading = declared_energy(module, now)
        changed = energy is None or (
            energy.carbon_intensity,
            energy.renewable_share,
            energy.source,
        ) != (reading.carbon_intensity, reading.renewable_share, reading.source)
        return (
            RawEnergy(
                reading.carbon_intensity,
                reading.renewable_share,
                _dump(reading.to_status(now)) if changed else None,
            ),
            False,
        )
    carbon = (
        energy.carbon_intensity
        if energy.carbon_intensity is not None
        else module.spec.energy.carbon_intensity
    )
    renewable = (
        energy.renewable_share if energy.renewable_share is not None else module.renewable_share()
    )
    return RawEnergy(float(carbon), float(renewable)), True


def module_status(
    module: AIFactoryModule,
    probe: Probe,
    smoothing: Mapping[str, Smoothed],
    now: datetime,
    settings: SignalSettings,
    signal_energy: EffectiveEnergy | None = None,
) -> ModuleOutcome:
    """The module's status from one probe (pure); `patch` is empty when nothing changed.

    `signal_energy` is the module's own carbon signal as `signals.carbon.effective_energy`
    judged it this round (None when it has no spec.energy.signal).
    """
    status = module.status
    gen = module.metadata.generation
    conditions = list(status.conditions) if status else []
    previous_heartbeat = status.last_heartbeat_time if status else None
    last_seen = max(
        (t for t in (probe.last_seen, previous_heartbeat) if t is not None), default=None
    )
    reachable = Condition(
        type="Reachable",
        status=ConditionStatus.TRUE if probe.reachable else ConditionStatus.FALSE,
        reason=probe.reason if not probe.reachable else REASON_HEARTBEAT_OK,
        message=probe.message if not probe.reachable else "cluster answered",
        observed_generation=gen,
    )
    conditions = set_condition(conditions, reachable, now=now)
    out: dict[str, Any] = {}
    obs = probe.observation
    if probe.reachable and obs is not None:
        total = sum(p.allocatable for p in obs.pools.values())
        usable_nodes = obs.usable_nodes
        if usable_nodes:
            ready = Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason=REASON_READY,
                message=f"{total} GPUs on {usable_nodes} usable nodes",
                observed_generation=gen,
            )
        else:
            ready = Condition(
                type="Ready",
                status=ConditionStatus.FALSE,
                reason=REASON_NO_GPUS,
                message="no Ready, schedulable, untainted node with nvidia.com/gpu allocatable",
                observed_generation=gen,
            )
    elif last_seen is None:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason=REASON_NEVER_SEEN,
            message=f"no successful heartbeat yet: {reachable.message}",
            observed_generation=gen,
        )
    elif (now - last_seen).total_seconds() >= settings.heartbeat_timeout:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason=REASON_HEARTBEAT_TIMEOUT,
            message=f"no heartbeat since {iso(last_seen)}: {reachable.message}",
            observed_generation=gen,
        )
    else:  # within the timeout (or reachable but not listed yet): keep what Ready said
        previous = module.condition("Ready")
        ready = (
            previous.model_copy(update={"observed_generation": gen})
            if previous is not None
            else Condition(
                type="Ready",
                status=ConditionStatus.UNKNOWN,
                reason=REASON_UNREACHABLE,
                message=reachable.message,
                observed_generation=gen,
            )
        )
    conditions = set_condition(conditions, ready, now=now)
    # kstatus: Stalled when only a change (to the kubeconfig Secret) can help; Reconciling
    # while the module has never been seen
    stalled = not probe.reachable and probe.reason in PERMANENT_REASONS
    conditions = set_condition(
        conditions,
        Condition(
            type="Stalled",
            status=ConditionStatus.TRUE if stalled else ConditionStatus.FALSE,
            reason=probe.reason if stalled else "AsExpected",
            message=probe.message if stalled else "the module's cluster can be used",
            observed_generation=gen,
        ),
        now=now,
    )
    never_seen = ready.reason == REASON_NEVER_SEEN and not stalled
    conditions = set_condition(
        conditions,
        Condition(
            type="Reconciling",
            status=ConditionStatus.TRUE if never_seen else ConditionStatus.FALSE,
            reason="WaitingForHeartbeat" if never_seen else "AsExpected",
            message="no successful heartbeat yet" if never_seen else "up to date",
            observed_generation=gen,
        ),
        now=now,
    )
    conditions = [c.model_copy(update={"observed_generation": gen}) for c in conditions]
    if [_dump(c) for c in conditions] != [_dump(c) for c in (status.conditions if status else [])]:
        out["conditions"] = [_dump(c) for c in conditions]
    if status is None or status.observed_generation != gen:
        out["observedGeneration"] = gen
    heartbeat_due = probe.reachable and (
        previous_heartbeat is None
        or (now - previous_heartbeat).total_seconds() >= settings.heartbeat_timeout
    )
    if obs is not None:
        capacity = ModuleCapacityStatus(
            gpus=[
                GpuPoolStatus(
                    model=p.model, gpus_allocatable=p.allocatable, gpus_allocated=p.requested
                )
                for p in obs.pools.values()
            ]
        )
        if status is None or status.capacity != capacity:
            out["capacity"] = _dump(capacity)
        total = sum(p.allocatable for p in obs.pools.values())
        free = sum(max(0, p.allocatable - p.requested) for p in obs.pools.values())
        if status is None or (status.gpus_total, status.gpus_free) != (total, free):
            out["gpusTotal"] = total
            out["gpusFree"] = free

    # energy: raw (status.energy) and effective (status.effectiveEnergy)
    energy = status.energy if status else None
    raw, live = _raw_energy(module, energy, signal_energy, now)
    if raw.patch is not None:
        out["energy"] = raw.patch
    if raw.condition is not None:
        conditions_after = set_condition(
            [Condition.model_validate(c) for c in out.get("conditions", [])] or list(conditions),
            raw.condition.model_copy(update={"observed_generation": gen}),
            now=now,
        )
        dumped = [_dump(c) for c in conditions_after]
        if dumped != [_dump(c) for c in (status.conditions if status else [])]:
            out["conditions"] = dumped
    new_smoothing = dict(smoothing)
    prev_eff = status.effective_energy if status else None
    if not live:
        carbon, renewable = raw.carbon_intensity, raw.renewable_share
        new_smoothing = {
            "carbonIntensity": Smoothed(carbon, now),
            "renewableShare": Smoothed(renewable, now),
        }
        unchanged = (
            prev_eff is not None
            and prev_eff.carbon_intensity == carbon
            and prev_eff.renewable_share == renewable
            and prev_eff.pending is None
        )
        effective = EffectiveEnergyStatus(
            carbon_intensity=carbon,
            renewable_share=renewable,
            since=prev_eff.since if unchanged and prev_eff is not None else now,
        )
    else:
        fields = {
            "carbonIntensity": (
                raw.carbon_intensity,
                prev_eff.carbon_intensity if prev_eff else None,
            ),
            "renewableShare": (raw.renewable_share, prev_eff.renewable_share if prev_eff else None),
        }
        pending: list[str] = []
        values: dict[str, float] = {}
        since = prev_eff.since if prev_eff and prev_eff.since else now
        for name, (reading, eff) in fields.items():
            state = new_smoothing.get(name)
            if state is None:
                state = Smoothed(float(eff if eff is not None else reading), since)
            state = smooth(
                state,
                float(reading),
                now,
                tolerance_s=settings.tolerance_s,
                min_readings=settings.min_readings,
            )
            new_smoothing[name] = state
            values[name] = state.effective
            note = state.describe_pending(name)
            if note:
                pending.append(note)
        latest = max(st.since for st in new_smoothing.values())
        effective = EffectiveEnergyStatus(
            carbon_intensity=values["carbonIntensity"],
            renewable_share=values["renewableShare"],
            since=latest,
            pending="; ".join(pending) or None,
        )
    if status is None or status.effective_energy != effective:
        out["effectiveEnergy"] = _dump(effective)
    # the heartbeat rides along with any other change and is refreshed on its own only every
    # heartbeatTimeout: a write per module every heartbeat was most of the hub's write load
    # on large fleets (1,000 modules at 10 s = 100 writes/s) for a field the operator reads
    # back only after a restart (`aifactoryctl fleet` shows its age)
    if probe.reachable and (heartbeat_due or out):
        out["lastHeartbeatTime"] = iso(now)
    return ModuleOutcome(
        patch=out,
        smoothing=new_smoothing,
        ready=ready.status is ConditionStatus.TRUE,
    )
