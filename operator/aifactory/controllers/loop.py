"""The operator's periodic work, as asyncio tasks on kopf's event loop.

* placement loop: wakes on queued deployments (or a tick), waits a short batch window, takes a
  snapshot of the hub caches (on the event loop), plans the batch in a worker thread, and hands
  member jobs to the executor, writes to the writer and Events to the recorder; never waits for
  any of them;
* module monitor: every heartbeatInterval resolves clusters, probes them, writes module status;
* policy monitor: every statusInterval writes policy status;
* rebalancer: every rebalanceInterval solves the whole fleet in its own thread; deployments
  pick up its targets in later cycles (never inside a cycle, never holding placements up);
* demand poller: reads live demand per deployment, stabilised like the HPA;
* router poller and publisher (routers.py): live router demand and tier shares; router status,
  routing ConfigMap and endpoint, HTTPRoutes in members.

Only the leader plans and writes; every replica keeps caches warm. Every task survives any
error and any apiserver outage: it logs, backs off and goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from aifactory import metrics
from aifactory.api import AIFactoryModule, EmissionFactorType, InferenceDeployment, SignalType
from aifactory.clusters import ClusterError, ModuleObservation, observe_modules
from aifactory.placement import FleetState
from aifactory.placement.from_api import module_view
from aifactory.placement.rtt import RttTable
from aifactory.signals.carbon import (
    CarbonReading,
    CarbonSignalError,
    Credentials,
    SignalMethod,
    effective_energy,
    fetch_reading,
    read_csv_file,
    record,
    urllib_get,
)
from aifactory.signals.demand import DemandSignalError, apply_demand, fetch_demand
from aifactory.signals.rtt import RttTableError, fetch_rtt, rtt_table_from_config_map
from aifactory.signals.smoothing import stabilize_demand

from .cycle import CycleResult, Event, fleet_plan, run_cycle
from .events import ObjectRef
from .fleet import module_use
from .modules import Probe, SignalSettings, module_status
from .policies import policy_status
from .routers import RouterTasks
from .runtime import GROUP, VERSION, DemandState, Runtime, forever

log = logging.getLogger(__name__)


class Loops:
    """Owns the worker threads and runs every periodic task."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.plan_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner")
        self.rebalance_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebalancer")
        self.io_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="monitor")
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self) -> None:
        rt = self.rt
        loop = asyncio.get_running_loop()
        rt.attach(loop)
        routers = RouterTasks(rt, self.io_pool)
        self.tasks = [
            loop.create_task(self.placement(), name="placement loop"),
            loop.create_task(forever("module monitor", rt, self.modules), name="module monitor"),
            loop.create_task(forever("policy monitor", rt, self.policies), name="policy monitor"),
            loop.create_task(forever("rebalancer", rt, self.rebalance), name="rebalancer"),
            loop.create_task(forever("demand poller", rt, self.demand), name="demand poller"),
            loop.create_task(forever("router poller", rt, routers.poll), name="router poller"),
            loop.create_task(
                forever("router publisher", rt, routers.publish), name="router publisher"
            ),
            loop.create_task(forever("energy poller", rt, self.energy), name="energy poller"),
            loop.create_task(forever("rtt poller", rt, self.rtt), name="rtt poller"),
        ]
        if rt.accountability is not None:  # SLO poller, compliance reports, record keeper
            self.tasks += rt.accountability.start(loop)

    async def stop(self) -> None:
        self.rt.stopping.set()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for pool in (self.plan_pool, self.rebalance_pool, self.io_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    # --------------------------------------------------------------------------- placement
    async def placement(self) -> None:
        rt = self.rt
        backoff = 1.0
        while not rt.stopping.is_set():
            await rt.wait_work(timeout=min(1.0, rt.settings.status_interval))
            if not rt.active:
                continue
            try:
                await self._cycle()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("placement cycle failed; retrying in %.0fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(30.0, backoff * 2)

    async def _cycle(self) -> None:
        rt = self.rt
        if rt.settings.batch_window:
            await asyncio.sleep(rt.settings.batch_window)
        started = time.perf_counter()
        snapshot = rt.snapshot()  # on the event loop: nobody changes the indexes meanwhile
        refs = rt.take_dirty()
        all_refs = {d.ref for d in snapshot.deployments} | {
            i.key for i in snapshot.invalid if i.kind == "InferenceDeployment"
        }
        refs |= rt.due(all_refs, time.monotonic())
        metrics.QUEUE_DEPTH.set(len(refs))
        if not refs:
            return
        loop = asyncio.get_running_loop()
        views = {key: obs.snapshot() for key, obs in rt.members.observers().items()}
        now = datetime.now(UTC)
        result: CycleResult = await loop.run_in_executor(
            self.plan_pool, run_cycle, rt, snapshot, views, refs, now
        )
        self._apply(result)
        metrics.BATCH_SIZE.observe(len(refs))
        metrics.CYCLE_SECONDS.observe(time.perf_counter() - started)

    def _apply(self, result: CycleResult) -> None:
        """Record the cycle's decisions and hand its I/O over (runs on the event loop)."""
        rt = self.rt
        for ref, status in result.decided.items():
            rt.decided[ref] = status
            rt.decided_uid[ref] = result.decided_uid.get(ref)
        for ref, blocked in result.blocked.items():
            rt.blocked[ref] = blocked
        rt.adopted.update(result.adopted)
        rt.blind_at.update(result.blind_at)
        for ref, ok in result.settled.items():
            rt.schedule(ref, ok, result.recheck.get(ref))
        for ref in result.forgotten:
            rt.forget(ref)
            metrics.forget_deployment(ref)
        for job in result.jobs:
            rt.executor.submit(job)
        for w in result.writes:
            rt.writer.submit(w.key, w.kind, w.path, w.body)
        for e in result.events:
            self._event(e)
        if result.records and rt.accountability is not None:
            rt.accountability.submit(result.records)
        for ref, (placed, unplaced, carbon, emissions) in result.metrics.items():
            metrics.set_deployment(ref, placed, unplaced, carbon, emissions)
        now = time.monotonic()
        for ref in result.placed:
            seen = rt.spec_seen.get(ref)
            placed_status = result.decided.get(ref)
            if seen is None or placed_status is None:
                continue
            gen, at = seen
            placed_cond = next((c for c in placed_status.conditions if c.type == "Placed"), None)
            if (
                placed_status.observed_generation == gen
                and placed_cond is not None
                and placed_cond.is_true
            ):
                metrics.PLACEMENT_LATENCY.observe(now - at)
                rt.spec_seen.pop(ref, None)

    def _event(self, e: Event) -> None:
        self.rt.recorder.record(
            ObjectRef(e.api_version, e.kind, e.name, e.namespace, e.uid),
            e.type,
            e.reason,
            e.message,
        )

    # --------------------------------------------------------------------------- modules
    async def modules(self) -> float:
        rt = self.rt
        interval = rt.settings.heartbeat_interval
        if not rt.active:
            return min(1.0, interval)
        snapshot = rt.snapshot()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.io_pool, rt.members.refresh, snapshot.modules)
        observers = rt.members.observers()
        acc = rt.accountability
        probes = await asyncio.gather(
            *(
                loop.run_in_executor(self.io_pool, acc.timed(key, obs.probe) if acc else obs.probe)
                for key, obs in observers.items()
            )
        )
        reachable = dict(zip(observers, probes, strict=True))
        views = {key: obs.snapshot() for key, obs in observers.items()}
        now = datetime.now(UTC)
        signal = SignalSettings(
            heartbeat_timeout=rt.settings.heartbeat_timeout,
            tolerance_s=rt.settings.signal_tolerance_seconds,
            min_readings=rt.settings.signal_tolerance_readings,
        )
        wanted: dict[str, dict[str, Any]] = {}
        for m in snapshot.modules:
            try:
                t = rt.members.target(m)
            except ClusterError:
                continue
            wanted.setdefault(t.cluster_key, {})[m.name] = t.node_selector
        observed: dict[str, ModuleObservation] = {}
        for key, selectors in wanted.items():
            if key in views:
                observed.update(observe_modules(views[key], selectors))
        changed: set[str] = set()
        grew: set[str] = set()
        basis = SignalMethod(
            SignalType(rt.settings.carbon_signal_type),
            EmissionFactorType(rt.settings.carbon_emission_factor_type),
        )
        max_age = timedelta(seconds=rt.settings.energy_signal_max_age)
        for m in snapshot.modules:
            probe = self._probe(m, reachable, views, observed)
            live = (
                effective_energy(
                    m, rt.signal_states.get(m.name), now=now, max_age=max_age, basis=basis
                )
                if m.spec.energy.signal is not None
                else None
            )
            with metrics.observe("module"):
                outcome = module_status(
                    m, probe, rt.smoothing.get(m.name, {}), now, signal, signal_energy=live
                )
            rt.smoothing[m.name] = dict(outcome.smoothing)
            patch = dict(outcome.patch)
            if acc is not None:  # status.reliability when worth writing
                reliability = acc.module_reliability(m, outcome.ready, patch, now)
                if reliability:
                    patch["reliability"] = reliability
            if patch:
                path = f"/apis/{GROUP}/{VERSION}/aifactorymodules/{m.name}/status"
                rt.writer.submit(f"module/{m.name}", "status", path, {"status": patch})
            metrics.MODULE_READY.labels(m.name).set(1 if outcome.ready else 0)
            if probe.observation is not None:
                for pool in probe.observation.pools.values():
                    metrics.FLEET_GPUS.labels(m.name, "allocatable").set(pool.allocatable)
                    metrics.FLEET_GPUS.labels(m.name, "allocated").set(pool.requested)
            use = module_use(m, now, rt.settings.toleration_seconds)
            old_use = rt.module_uses.get(m.name)
            if old_use != use:
                rt.module_uses[m.name] = use
                changed.add(m.name)
                if use.placeable and (old_use is None or not old_use.placeable):
                    grew.add(m.name)
        gone = set(rt.module_uses) - {m.name for m in snapshot.modules}
        for name in gone:
            rt.module_uses.pop(name, None)
            rt.smoothing.pop(name, None)
            if acc is not None:
                acc.forget_module(name)
            changed.add(name)
        if changed:
            rt.mark(affected_by_modules(rt, snapshot, changed, grew=bool(grew)))
        return interval

    def _probe(
        self,
        m: AIFactoryModule,
        reachable: dict[str, bool],
        views: dict[str, Any],
        observed: dict[str, ModuleObservation],
    ) -> Probe:
        rt = self.rt
        err = rt.members.access_error(m)
        if err is not None:
            return Probe(False, err.reason, err.message)
        try:
            target = rt.members.target(m)
        except ClusterError as exc:
            return Probe(False, exc.reason, exc.message)
        view = views.get(target.cluster_key)
        ok = reachable.get(target.cluster_key, False)
        obs = observed.get(m.name) if view is not None and view.synced else None
        if not ok:
            why = view.error if view is not None and view.error else "cluster did not answer"
            return Probe(False, "ClusterUnreachable", why, None, view.last_seen if view else None)
        return Probe(True, observation=obs, last_seen=view.last_seen if view else None)

    # --------------------------------------------------------------------------- policies
    async def policies(self) -> float:
        rt = self.rt
        interval = rt.settings.status_interval
        if not rt.active:
            return min(1.0, interval)
        snapshot = rt.snapshot()
        if not snapshot.policies:
            return interval
        # policies see this process's latest decisions (status may lag a write)
        deployments = tuple(
            d.model_copy(update={"status": rt.decided.get(d.ref, d.status)})
            for d in snapshot.deployments
        )
        view = snapshot.__class__(
            modules=snapshot.modules,
            policies=snapshot.policies,
            deployments=deployments,
            namespace_labels=snapshot.namespace_labels,
        )
        now = datetime.now(UTC)

        def compute() -> list[tuple[str, dict[str, Any]]]:
            fleet = FleetState([module_view(m) for m in view.modules])
            out = []
            for p in view.policies:
                with metrics.observe("sovereigntypolicy"):
                    out.append((p.name, policy_status(p, view, now, fleet)))
            return out

        loop = asyncio.get_running_loop()
        for name, status in await loop.run_in_executor(self.io_pool, compute):
            key = f"policy/{name}"
            previous = rt.written.get(key, {}).get("status")
            if previous is not None and _same_ignoring_times(previous, status):
                continue
            path = f"/apis/{GROUP}/{VERSION}/sovereigntypolicies/{name}/status"
            rt.writer.submit(key, "status", path, {"status": status})
        return interval

    # --------------------------------------------------------------------------- rebalancer
    async def rebalance(self) -> float:
        rt = self.rt
        interval = rt.settings.rebalance_interval
        if not rt.active:
            return min(1.0, interval)
        snapshot = rt.snapshot()
        if not snapshot.deployments:
            return interval
        views = {key: obs.snapshot() for key, obs in rt.members.observers().items()}
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        plan = await loop.run_in_executor(self.rebalance_pool, fleet_plan, rt, snapshot, views)
        rt.fleet_plan = plan
        metrics.PLACEMENT_COST.set(plan.cost)
        if plan.lower_bound is not None and plan.lower_bound > 0:
            metrics.PLACEMENT_BOUND.set(plan.lower_bound)
            metrics.PLACEMENT_GAP.set(plan.cost / plan.lower_bound - 1.0)
        else:
            metrics.PLACEMENT_GAP.set(float("nan"))
        replaced = sorted(
            r for r, d in plan.decisions.items() if d.stability.startswith("replaced")
        )
        log.info(
            "rebalancer: fleet plan by %s in %.2fs, cost %.3f, lower bound %s; %d deployments "
            "would move",
            plan.solver or "?",
            time.perf_counter() - started,
            plan.cost,
            f"{plan.lower_bound:.3f}" if plan.lower_bound is not None else "none",
            len(replaced),
        )
        rt.mark(replaced)
        return interval

    # --------------------------------------------------------------------------- rtt
    async def rtt(self) -> float:
        """Read the measured RTT sources (ConfigMap, Prometheus); the last good table of each
        stays in force while its source fails. A change re-plans every deployment."""
        rt = self.rt
        s = rt.settings
        if not (s.rtt_config_map or (s.rtt_prometheus_url and s.rtt_prometheus_query)):
            return 3600.0
        if not rt.active:
            return 1.0
        loop = asyncio.get_running_loop()
        tables = await loop.run_in_executor(self.io_pool, self._read_rtt)
        merged: RttTable | None = None
        for table in tables:
            if table is not None:
                merged = table if merged is None else merged.merged(table)
        if merged != rt.rtt_table:
            rt.rtt_table = merged
            log.info(
                "measured RTTs: %d pairs from %s",
                len(merged.pairs) if merged else 0,
                merged.source if merged else "nowhere",
            )
            rt.mark(d.ref for d in rt.snapshot().deployments)
        metrics.RTT_PAIRS.set(len(merged.pairs) if merged else 0)
        return s.rtt_poll_interval

    def _read_rtt(self) -> list[RttTable | None]:
        rt, s = self.rt, self.rt.settings
        out: list[RttTable | None] = []
        if s.rtt_config_map:
            ns, name = s.rtt_config_map.split("/", 1)
            try:
                cm = rt.hub.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
                rt.rtt_sources["configmap"] = rtt_table_from_config_map(
                    cm.get("data") or {}, source=f"configmap {s.rtt_config_map}"
                )
            except (ClusterError, RttTableError) as err:
                metrics.RTT_SOURCE_ERRORS.labels("configmap").inc()
                log.warning("measured RTTs from ConfigMap %s not read: %s", s.rtt_config_map, err)
            out.append(rt.rtt_sources.get("configmap"))
        if s.rtt_prometheus_url and s.rtt_prometheus_query:
            try:
                rt.rtt_sources["prometheus"] = fetch_rtt(
                    s.rtt_prometheus_url, s.rtt_prometheus_query
                )
            except RttTableError as err:
                metrics.RTT_SOURCE_ERRORS.labels("prometheus").inc()
                log.warning("measured RTTs from Prometheus not read: %s", err)
            out.append(rt.rtt_sources.get("prometheus"))
        return out

    # --------------------------------------------------------------------------- energy
    async def energy(self) -> float:
        """Poll every module's spec.energy.signal (external APIs, in threads); keep-last-good.
        The module monitor turns the state into status.energy on its next round."""
        rt = self.rt
        poll = rt.settings.energy_poll_interval
        if not rt.active:
            return min(1.0, poll)
        snapshot = rt.snapshot()
        feeds = [m for m in snapshot.modules if m.spec.energy.signal is not None]
        for name in set(rt.signal_states) - {m.name for m in feeds}:
            rt.signal_states.pop(name, None)
        if not feeds:
            return min(poll, 30.0)  # notice a newly configured feed without waiting long
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        outcomes = await asyncio.gather(
            *(loop.run_in_executor(self.io_pool, self._read_signal, m, now) for m in feeds)
        )
        for m, outcome in zip(feeds, outcomes, strict=True):
            rt.signal_states[m.name] = record(rt.signal_states.get(m.name), outcome)
        return poll

    def _read_signal(
        self, module: AIFactoryModule, now: datetime
    ) -> CarbonReading | CarbonSignalError:
        """One feed read, every failure a CarbonSignalError (credentials are never logged)."""
        rt = self.rt
        signal = module.spec.energy.signal
        assert signal is not None
        try:
            credentials = None
            if signal.credentials_secret_ref is not None:
                ref = signal.credentials_secret_ref
                secret = rt.hub.get(f"/api/v1/namespaces/{ref.namespace}/secrets/{ref.name}")
                credentials = Credentials.from_secret(secret.get("data") or {})
            csv_text = None
            if signal.csv is not None:
                if signal.csv.config_map_key_ref is not None:
                    cm = signal.csv.config_map_key_ref
                    data = rt.hub.get(f"/api/v1/namespaces/{cm.namespace}/configmaps/{cm.name}")
                    csv_text = (data.get("data") or {}).get(cm.key)
                    if csv_text is None:
                        return CarbonSignalError(
                            "NoData", f"ConfigMap {cm.namespace}/{cm.name} has no key {cm.key}"
                        )
                else:
                    assert signal.csv.path is not None
                    csv_text = read_csv_file(signal.csv.path)
            return fetch_reading(
                signal,
                now=now,
                http_get=urllib_get,
                credentials=credentials,
                csv_text=csv_text,
                max_age=timedelta(seconds=rt.settings.energy_signal_max_age),
                default_emission_factor_type=rt.settings.carbon_emission_factor_type,
                token_cache=rt.token_cache,
            )
        except CarbonSignalError as err:
            return err
        except ClusterError as err:
            return CarbonSignalError("CredentialsUnreadable", err.message)
        except OSError as exc:
            return CarbonSignalError("NoData", f"cannot read the series: {type(exc).__name__}")

    # --------------------------------------------------------------------------- demand
    async def demand(self) -> float:
        rt = self.rt
        poll = rt.settings.demand_poll_interval
        if not rt.active:
            return min(1.0, poll)
        snapshot = rt.snapshot()
        sources = [d for d in snapshot.deployments if d.spec.demand.prometheus is not None]
        for ref in set(rt.demand) - {d.ref for d in sources}:
            rt.demand.pop(ref, None)
        if not sources:
            return poll
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        results = await asyncio.gather(
            *(loop.run_in_executor(self.io_pool, _read_demand, d, now) for d in sources)
        )
        window = rt.settings.demand_stabilization_window
        changed = []
        for d, (reading, error) in zip(sources, results, strict=True):
            state = rt.demand.get(d.ref) or DemandState()
            before = (state.effective, state.error_reason)
            if error is None and reading is not None:
                effective, history = stabilize_demand(state.history, reading, now, window)
                state = DemandState(history=history, effective=effective, read_at=now)
            elif error is not None:
                effective_kept, read_at = state.effective, state.read_at
                if effective_kept is None and d.status and d.status.observed_demand:
                    # a restarted operator keeps the last reading it wrote down
                    effective_kept = dict(d.status.observed_demand)
                    read_at = d.status.demand_updated_at
                state = dataclasses.replace(
                    state,
                    effective=effective_kept,
                    read_at=read_at,
                    error_reason=error.reason,
                    error_message=error.message,
                )
            rt.demand[d.ref] = state
            if (state.effective, state.error_reason) != before:
                changed.append(d.ref)
        rt.mark(changed)
        return poll


def _read_demand(
    d: InferenceDeployment, now: datetime
) -> tuple[dict[str, float] | None, DemandSignalError | None]:
    source = d.spec.demand.prometheus
    assert source is not None
    try:
        sample = fetch_demand(source, now=now)
        apply_demand(d, sample.requests_per_second)  # validates: refuses empty samples
    except DemandSignalError as exc:
        return None, exc
    return dict(sample.requests_per_second), None


def _same_ignoring_times(a: Any, b: Any) -> bool:
    """Equal apart from lastTransitionTime (which set_condition keeps stable anyway)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - {"lastTransitionTime"}
        return all(_same_ignoring_times(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            _same_ignoring_times(x, y) for x, y in zip(a, b, strict=True)
        )
    return bool(a == b)


def affected_by_modules(
    rt: Runtime, snapshot: Any, modules: set[str], *, grew: bool = True
) -> set[str]:
    """Deployments a change of these modules may concern: those placed there, and, when the
    change may have made room (`grew`), those with replicas that found no module.

    A module filling up cannot help anyone waiting: not re-planning every unplaced deployment
    on each pod bound is what keeps a full fleet from re-solving them all per event (#15)."""
    out: set[str] = set()
    for d in snapshot.deployments:
        st = rt.decided.get(d.ref) or d.status
        if st is None:
            out.add(d.ref)
            continue
        if grew and st.unsatisfied is not None and st.unsatisfied.replicas > 0:
            out.add(d.ref)
            continue
        if any(p.module in modules for p in st.placements):
            out.add(d.ref)
    return out
