"""Accountability in the operator: decision records, compliance reports, module reliability and
measured-latency SLOs, wired to the placement loop through a few hooks.

The placement cycle calls (planner thread, no I/O, reads only state other threads replace
whole):

* `restrict(ref, workload)`: the (region, module) pairs out of the SLO by measured latency;
* `decorate(infd, status, now)`: the SLOBreached condition;
* `capture(...)` / `capture_deletion(...)`: record drafts of a placement change.

The loop (event loop) calls `submit(drafts)` (the record keeper's thread hashes, chains, signs
and writes them), `timed(...)` around module probes and `module_reliability(...)` for each
module's status. Two periodic tasks of their own read measured latency (`_slo_round`) and write
compliance reports (`_evidence_round`). Only the leader does any of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aifactory import metrics
from aifactory.api import (
    AIFactoryModule,
    InferenceDeployment,
    InferenceDeploymentStatus,
    set_condition,
)
from aifactory.audit import evidence, reliability, slo
from aifactory.audit.keeper import RecordKeeper
from aifactory.audit.records import (
    DELETED,
    Change,
    CostTerms,
    ModuleFacts,
    RecordDraft,
    build,
)
from aifactory.clusters import HUB_CLUSTER, ClusterError, secret_key
from aifactory.placement import FleetState, WorkloadView, bind
from aifactory.placement.from_api import policy_view, workload_view
from aifactory.placement.state import WorkloadState
from aifactory.signals.demand import DemandSignalError

from . import planner
from .events import ObjectRef
from .runtime import forever

if TYPE_CHECKING:
    from .fleet import FleetContext, HubSnapshot
    from .runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")
Pair = tuple[str, str]


@dataclass
class SloState:
    """One deployment's measured-latency state (the SLO poller replaces it whole)."""

    pairs: Mapping[Pair, slo.PairState] = field(default_factory=dict)
    read: bool = False
    error: str | None = None
    max_ms: float = 0.0


def _signing(settings: Any) -> tuple[str, str, str] | None:
    ref = settings.records_signing_secret
    if not ref:
        return None
    ns, _, name = ref.rpartition("/")
    return (ns or settings.namespace, name, settings.records_signing_key)


class Accountability:
    """What the operator keeps to be held to account; one per Runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        s = rt.settings
        self.keeper: RecordKeeper | None = (
            RecordKeeper(
                rt.hub,
                active=lambda: rt.active,
                max_count=s.records_max_count,
                max_age_seconds=s.records_max_age,
                queue_limit=s.records_queue_limit,
                signing=_signing(s),
            )
            if s.records_enabled
            else None
        )
        # reliability (event loop only)
        self._reliability: dict[str, reliability.ReliabilityState] = {}
        self._rel_written: dict[str, tuple[dict[str, Any], float]] = {}
        self._failovers: dict[str, list[datetime]] = {}
        self._breaches: dict[str, list[reliability.Breach]] = {}
        #: cluster key -> seconds of the last successful probe (written by monitor threads)
        self._latency: dict[str, float] = {}
        # measured SLOs: state on the event loop; `excluded` is replaced whole for the planner
        self._slo: dict[str, SloState] = {}
        self.excluded: Mapping[str, frozenset[Pair]] = {}
        # compliance reports
        self._reports: dict[str, dict[str, Any]] = {}
        self._reports_api: tuple[bool, float] | None = None
        self._unbound_checked: set[str] = set()
        #: uids of deployments whose deletion was recorded (planner thread only)
        self._deleted: set[str | None] = set()
        self.tasks: list[asyncio.Task[Any]] = []

    # ------------------------------------------------------------------------ lifecycle
    def start(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
        if self.keeper is not None:
            self.keeper.start()
        s = self.rt.settings
        self.tasks = [
            loop.create_task(forever("slo poller", self.rt, self._slo_round), name="slo poller"),
        ]
        if s.reports_enabled:
            self.tasks.append(
                loop.create_task(
                    forever("compliance reports", self.rt, self._evidence_round),
                    name="compliance reports",
                )
            )
        return self.tasks

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()

    # ------------------------------------------------------------------------ cycle hooks
    def restrict(self, ref: str, workload: WorkloadView) -> WorkloadView:
        """The workload with the (region, module) pairs measured latency excludes."""
        pairs = self.excluded.get(ref)
        if not pairs:
            return workload
        return dataclasses.replace(workload, slo_excluded=pairs)

    def decorate(
        self, infd: InferenceDeployment, status: InferenceDeploymentStatus, now: datetime
    ) -> InferenceDeploymentStatus:
        """SLOBreached on deployments with spec.slo.measured (and none on the others)."""
        measured = infd.spec.slo.measured
        conditions = list(status.conditions)
        if measured is None or infd.spec.slo.max_latency_ms is None:
            if any(c.type == slo.CONDITION for c in conditions):
                return status.model_copy(
                    update={"conditions": [c for c in conditions if c.type != slo.CONDITION]}
                )
            return status
        st = self._slo.get(infd.ref)
        cond = slo.condition(
            st.pairs if st is not None and st.read else None,
            infd.spec.slo.max_latency_ms,
            infd.metadata.generation,
            now,
            error=st.error if st is not None else None,
        )
        return status.model_copy(update={"conditions": set_condition(conditions, cond, now=now)})

    def capture(
        self,
        infd: InferenceDeployment,
        effective: InferenceDeployment,
        current: planner.Cells,
        result: planner.Plan,
        ws: WorkloadState,
        ctx: FleetContext,
        snapshot: HubSnapshot,
        now: datetime,
    ) -> list[RecordDraft]:
        """A record draft when the placement changed (cells before != after), else none."""
        if self.keeper is None:
            return []
        before = {k: v for k, v in current.items() if v > 0}
        after = {k: v for k, v in result.step.cells.items() if v > 0}
        if before == after:
            return []
        fleet = ctx.fleet
        change = Change(
            removed=result.step.removed,
            moves=result.step.moves,
            rebalanced=result.rebalanced,
            draining=frozenset(m for m, u in ctx.uses.items() if u.draining),
            slo_excluded=ws.workload.slo_excluded,
        )
        message = "; ".join(
            e.message
            for e in result.events
            if e.reason
            in ("Placed", "Scaled", "Rescheduled", "Rebalanced", "ComplianceRemoval", "Preempted")
        )
        by_name = {p.metadata.name: p for p in snapshot.policies}
        policies = [
            (
                p.name,
                by_name[p.name].metadata.resource_version if p.name in by_name else None,
                p.enforcement,
            )
            for p in (*ws.binding.enforce, *ws.binding.audit)
        ]
        fp = self.rt.fleet_plan
        plan_info = None
        if fp is not None:
            gap = (
                fp.cost / fp.lower_bound - 1.0
                if fp.lower_bound is not None and fp.lower_bound > 0
                else None
            )
            plan_info = {
                "cost": round(fp.cost, 6),
                "lowerBound": None if fp.lower_bound is None else round(fp.lower_bound, 6),
                "gap": None if gap is None else round(max(0.0, gap), 6),
                "solver": fp.solver or None,
                "madeAt": fp.made_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        unsatisfied = result.status.unsatisfied
        return [
            build(
                namespace=infd.namespace,
                name=infd.name,
                uid=infd.metadata.uid,
                generation=infd.metadata.generation,
                data_classification=infd.spec.data_classification.value,
                before=before,
                after=after,
                change=change,
                now=now,
                message=message,
                cost_after=cost_terms(ws, fleet, after),
                cost_before=cost_terms(ws, fleet, before),
                unplaced=unsatisfied.replicas if unsatisfied else 0,
                modules=module_facts(fleet, ctx, {m for _, m in (*before, *after)}),
                modules_digest=fleet_digest(fleet),
                policies=policies,
                demand={r.name: r.requests_per_second for r in effective.spec.demand.regions},
                fleet_plan=plan_info,
            )
        ]

    def capture_deletion(
        self, infd: InferenceDeployment, status: InferenceDeploymentStatus | None, now: datetime
    ) -> list[RecordDraft]:
        """The last record of a deleted deployment: everything it ran, gone (once)."""
        if self.keeper is None or status is None or infd.metadata.uid in self._deleted:
            return []
        before = planner.cells_of(status.placements, has_demand=bool(infd.spec.demand.regions))
        if not any(v > 0 for v in before.values()):
            return []
        self._deleted.add(infd.metadata.uid)
        return [
            build(
                namespace=infd.namespace,
                name=infd.name,
                uid=infd.metadata.uid,
                generation=infd.metadata.generation,
                data_classification=infd.spec.data_classification.value,
                before=before,
                after={},
                change=Change(),
                now=now,
                message="InferenceDeployment deleted: member objects removed",
                reason=DELETED,
            )
        ]

    # ------------------------------------------------------------------------ loop hooks
    def submit(self, drafts: Sequence[RecordDraft]) -> None:
        """Hand drafts to the keeper (never blocks); count the failovers they record."""
        for d in drafts:
            for m in d.failover_modules:
                self._failovers.setdefault(m, []).append(d.at)
        if self.keeper is not None and drafts:
            self.keeper.submit(drafts)

    def timed(self, key: str, probe: Callable[[], T]) -> Callable[[], T]:
        """`probe`, timing its successful answers as the cluster's heartbeat latency."""

        def run() -> T:
            started = time.perf_counter()
            out = probe()
            if out:
                self._latency[key] = time.perf_counter() - started
            return out

        return run

    def module_reliability(
        self, module: AIFactoryModule, ready: bool, patch: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """`status.reliability` of one module when it is worth writing (else {}); metrics
        always."""
        s = self.rt.settings
        name = module.name
        state = self._reliability.get(name)
        if state is None:
            state = reliability.from_status(module.status.reliability if module.status else None)
        not_ready_since = None
        if not ready:
            for c in patch.get("conditions") or []:
                if c.get("type") == "Ready" and c.get("lastTransitionTime"):
                    not_ready_since = _parse(c["lastTransitionTime"])
            cond = module.condition("Ready")
            if not_ready_since is None and cond is not None:
                not_ready_since = cond.last_transition_time
        latency = self._latency.get(secret_key(module) or HUB_CLUSTER)
        state = reliability.step(
            state,
            ready=ready,
            now=now,
            window_seconds=s.reliability_window,
            not_ready_since=not_ready_since,
            failovers=self._failovers.pop(name, []),
            breaches=self._breaches.pop(name, []),
            heartbeat_latency_ms=None if latency is None else latency * 1000.0,
        )
        self._reliability[name] = state
        body = reliability.status_patch(state, now, s.reliability_window)
        metrics.MODULE_READY_FRACTION.labels(name).set(body["readyFraction"])
        metrics.MODULE_OUTAGES.labels(name).set(body["outages"])
        metrics.MODULE_OUTAGE_SECONDS.labels(name).set(body["outageSeconds"])
        metrics.MODULE_LONGEST_OUTAGE.labels(name).set(body["longestOutageSeconds"])
        metrics.MODULE_FAILOVERS.labels(name).set(body["failoversCaused"])
        metrics.MODULE_SLO_BREACHES.labels(name).set(body["sloBreaches"])
        if latency is not None:
            metrics.MODULE_HEARTBEAT_LATENCY.labels(name).set(latency)
        previous = self._rel_written.get(name)
        if previous is None and module.status is not None and module.status.reliability:
            written = module.status.reliability.model_dump(by_alias=True, mode="json")
            previous = (written, 0.0)
        mono = time.monotonic()
        if not reliability.worth_writing(
            previous[0] if previous else None,
            body,
            age_seconds=mono - previous[1] if previous else float("inf"),
            every=s.reliability_status_interval,
        ):
            return {}
        self._rel_written[name] = (body, mono)
        return body

    def forget_module(self, name: str) -> None:
        for d in (self._reliability, self._rel_written, self._failovers, self._breaches):
            d.pop(name, None)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------ SLO poller
    async def _slo_round(self) -> float:
        rt = self.rt
        poll = rt.settings.slo_poll_interval
        if not rt.active:
            return min(1.0, poll)
        snapshot = rt.snapshot()
        sources = [
            d
            for d in snapshot.deployments
            if d.spec.slo.measured is not None and d.spec.slo.max_latency_ms is not None
        ]
        for ref in set(self._slo) - {d.ref for d in sources}:
            self._drop_slo(ref)
        if not sources:
            if self.excluded:
                self.excluded = {}
            return poll
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        readings = await asyncio.gather(
            *(loop.run_in_executor(None, _read_latency, d, now) for d in sources)
        )
        s = rt.settings
        changed: list[str] = []
        excluded: dict[str, frozenset[Pair]] = {}
        for d, (values, error) in zip(sources, readings, strict=True):
            assert d.spec.slo.max_latency_ms is not None
            old = self._slo.get(d.ref) or SloState()
            max_ms = d.spec.slo.max_latency_ms
            if values is None:
                state = dataclasses.replace(old, error=error, max_ms=max_ms)
                transitions: list[slo.Transition] = []
            else:
                pairs, transitions = slo.fold(
                    old.pairs,
                    values,
                    max_ms,
                    now,
                    tolerance_seconds=s.signal_tolerance_seconds,
                    min_readings=s.signal_tolerance_readings,
                    hold_seconds=s.slo_breach_hold,
                )
                state = SloState(pairs=pairs, read=True, error=None, max_ms=max_ms)
                for (region, module), ms in values.items():
                    metrics.MEASURED_LATENCY.labels(d.ref, region, module).set(ms)
            self._slo[d.ref] = state
            for t in transitions:
                self._transition(d, t, max_ms, now)
            pairs_now = slo.excluded(state.pairs, now)
            if pairs_now:
                excluded[d.ref] = pairs_now
            if (
                transitions
                or pairs_now != self.excluded.get(d.ref, frozenset())
                or (old.read, old.error) != (state.read, state.error)
            ):
                changed.append(d.ref)
        self.excluded = excluded
        rt.mark(changed)
        return poll

    def _transition(
        self, d: InferenceDeployment, t: slo.Transition, max_ms: float, now: datetime
    ) -> None:
        ref = ObjectRef(
            "aifactory.dev/v1alpha1", "InferenceDeployment", d.name, d.namespace, d.metadata.uid
        )
        if t.kind == "breach":
            metrics.SLO_BREACHED.labels(d.ref, t.region, t.module).set(1)
            metrics.SLO_BREACHES_TOTAL.labels(d.ref, t.region, t.module).inc()
            self.rt.recorder.record(
                ref,
                "Warning",
                slo.EVENT_BREACHED,
                f"measured latency {t.latency_ms:.0f} ms from {t.region} on {t.module} above "
                f"the SLO of {max_ms:g} ms since {t.since:%H:%M:%SZ}: {t.module} stops serving "
                f"{t.region} (make-before-break, within the disruption budget)",
            )
            self._breaches.setdefault(t.module, []).append(
                reliability.Breach(d.ref, t.region, now, None, t.latency_ms, max_ms)
            )
        else:
            metrics.SLO_BREACHED.labels(d.ref, t.region, t.module).set(0)
            self.rt.recorder.record(
                ref,
                "Normal",
                slo.EVENT_RESTORED,
                f"{t.region} on {t.module} no longer breaches the SLO of {max_ms:g} ms: {t.why}",
            )
            # close the breach in the module's reliability record (matched by its start)
            pending = self._breaches.setdefault(t.module, [])
            known = self._reliability.get(t.module, reliability.ReliabilityState())
            opened = [
                b
                for b in (*known.recent_breaches, *pending)
                if (b.deployment, b.region) == (d.ref, t.region) and b.end is None
            ]
            if opened:
                pending.append(dataclasses.replace(opened[-1], end=now))

    def _drop_slo(self, ref: str) -> None:
        self._slo.pop(ref, None)
        if ref in self.excluded:
            self.excluded = {k: v for k, v in self.excluded.items() if k != ref}

    # ------------------------------------------------------------------------ evidence
    async def _evidence_round(self) -> float:
        rt = self.rt
        interval = rt.settings.reports_interval
        if not rt.active:
            return min(1.0, interval)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._reports_available):
            return interval
        snapshot = rt.snapshot()
        decided = {d.ref: rt.decided.get(d.ref) or d.status for d in snapshot.deployments}
        now = datetime.now(UTC)
        reports, unbound = build_reports(snapshot, decided, self._reports, now)
        for ref, obj in reports.items():
            if evidence.same_findings(self._reports.get(ref), obj):
                continue
            self._reports[ref] = obj
            summary = obj["summary"]
            for result in ("pass", "fail", "warn"):
                metrics.COMPLIANCE_RESULTS.labels(ref, result).set(summary.get(result, 0))
            await loop.run_in_executor(None, self._apply_report, ref, obj)
        for ref in set(self._reports) - set(decided):
            self._reports.pop(ref, None)  # deleted: the garbage collector removes its Report
        stale = [ref for ref in unbound if ref in self._reports or ref not in self._unbound_checked]
        if stale:
            await loop.run_in_executor(None, self._delete_reports, stale, snapshot)
        return interval

    def _reports_available(self) -> bool:
        """Whether the hub serves openreports.io/v1alpha1 (checked every 5 minutes)."""
        cached = self._reports_api
        if cached is not None and time.monotonic() - cached[1] < 300:
            return cached[0]
        try:
            self.rt.hub.get(f"/apis/{evidence.API_VERSION}")
            ok = True
        except ClusterError as err:
            ok = False
            if cached is None or cached[0]:
                log.info(
                    "compliance reports: %s is not served (%s); install the OpenReports CRDs "
                    "to get them",
                    evidence.API_VERSION,
                    err.reason,
                )
        self._reports_api = (ok, time.monotonic())
        return ok

    def _apply_report(self, ref: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        path = evidence.report_path(meta["namespace"], meta["name"])
        try:
            self.rt.hub.apply(path, obj, "aifactory-operator", what=f"apply Report {ref}")
        except ClusterError as err:
            log.info("compliance reports: %s not written: %s", ref, err.message)
            self._reports.pop(ref, None)  # try again next round

    def _delete_reports(self, refs: Sequence[str], snapshot: HubSnapshot) -> None:
        # one list of our Reports, then a delete only for those that exist: a DELETE per
        # unbound deployment was a wasted hub write each for fleets without policies
        try:
            items, _ = self.rt.hub.list_pages(
                f"/apis/{evidence.API_VERSION}/{evidence.PLURAL}",
                [("labelSelector", f"{evidence.MANAGED_BY}={evidence.SOURCE}")],
            )
        except ClusterError as err:
            log.info("compliance reports: could not list them: %s", err.reason)
            return
        present = {
            (i["metadata"].get("namespace", ""), i["metadata"].get("name", "")) for i in items
        }
        for ref in refs:
            d = snapshot.deployment(ref)
            if d is None:
                continue
            name = evidence.report_name(d.name)
            if (d.namespace, name) in present:
                try:
                    self.rt.hub.delete(
                        evidence.report_path(d.namespace, name), what=f"delete Report {ref}"
                    )
                except ClusterError as err:
                    log.info("compliance reports: could not delete %s: %s", ref, err.reason)
                    continue
            self._reports.pop(ref, None)
            self._unbound_checked.add(ref)
            for result in ("pass", "fail", "warn"):
                with contextlib.suppress(KeyError):
                    metrics.COMPLIANCE_RESULTS.remove(ref, result)


# ---------------------------------------------------------------------------- pure helpers
def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _read_latency(
    d: InferenceDeployment, now: datetime
) -> tuple[dict[Pair, float] | None, str | None]:
    measured = d.spec.slo.measured
    assert measured is not None
    try:
        return slo.fetch_latency(measured.prometheus, now=now), None
    except DemandSignalError as exc:
        return None, f"{exc.reason}: {exc.message}"


def cost_terms(ws: WorkloadState, fleet: FleetState, cells: Mapping[Pair, int]) -> CostTerms:
    """The engine's terms summed over a placement's replicas (modules it no longer knows, or
    regions it no longer has, count nothing)."""
    rows = {name: r for r, name in enumerate(ws.region_names)}
    lat = car = rel = 0.0
    for (region, module), k in cells.items():
        m = fleet.index.get(module)
        r = rows.get(region, 0 if not ws.has_demand else None)
        if m is None or r is None or k <= 0:
            continue
        if ws.has_demand and ws.latency_cost.shape[0] > r:
            lat += k * float(ws.latency_cost[r, m])
        car += k * float(ws.carbon_cost[m])
        if ws.reliability_cost.size:
            rel += k * float(ws.reliability_cost[m])
    return CostTerms(lat, car, rel)


def module_facts(fleet: FleetState, ctx: FleetContext, names: set[str]) -> list[ModuleFacts]:
    out = []
    for name in sorted(names):
        i = fleet.index.get(name)
        use = ctx.uses.get(name)
        if i is None:
            out.append(ModuleFacts(name, ready=use.usable if use else None))
            continue
        view = fleet.modules[i]
        out.append(
            ModuleFacts(
                name,
                country=view.country,
                ready=use.usable if use else bool(fleet.ready[i]),
                carbon_intensity=float(fleet.carbon[i]),
                renewable_share=float(fleet.renewable[i]),
                ready_fraction=float(fleet.reliability[i]),
            )
        )
    return out


def fleet_digest(fleet: FleetState) -> str:
    """SHA-256 of every module's name, readiness, energy and reliability as the engine saw
    them; once per cycle (cached on the fleet)."""
    hit = fleet.cache.get(("audit", "modules"))
    if isinstance(hit, str):
        return hit
    h = hashlib.sha256()
    h.update("\n".join(fleet.names).encode())
    for arr in (
        fleet.ready,
        fleet.schedulable,
        fleet.draining,
        fleet.carbon,
        fleet.renewable,
        fleet.reliability,
    ):
        h.update(arr.tobytes())
    out = h.hexdigest()
    fleet.cache[("audit", "modules")] = out
    return out


def build_reports(
    snapshot: HubSnapshot,
    decided: Mapping[str, InferenceDeploymentStatus | None],
    previous: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Report objects of every bound deployment, and the deployments bound by nothing."""
    modules = snapshot.by_module()
    views = [policy_view(p) for p in snapshot.policies]
    by_name = {p.name: p for p in snapshot.policies}
    reports: dict[str, dict[str, Any]] = {}
    unbound: list[str] = []
    for d in snapshot.deployments:
        if d.metadata.deletion_timestamp is not None:
            continue
        binding = bind(workload_view(d, snapshot.namespace_labels.get(d.namespace)), views)
        names = [p.name for p in (*binding.enforce, *binding.audit)]
        if not names and not binding.missing:
            unbound.append(d.ref)
            continue
        st = decided.get(d.ref)
        placements = [
            (p.module, p.replicas, dict(p.regions)) for p in (st.placements if st else [])
        ]
        items = evidence.results(
            d, placements, modules, [by_name[n] for n in names], binding.missing
        )
        reports[d.ref] = evidence.report(d, items, now, previous.get(d.ref))
    return reports, unbound


__all__ = ["Accountability", "build_reports", "cost_terms", "fleet_digest", "module_facts"]
