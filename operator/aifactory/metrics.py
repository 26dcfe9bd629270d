"""Prometheus metrics of the operator, served on /metrics.

Names follow Prometheus conventions (`_total` counters, `_seconds` histograms) and carry only
object names as labels: never anything from a Secret.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_TOTAL = Counter(
    "aifactory_reconcile_total", "Reconciliations run, by controller.", ["controller"]
)
RECONCILE_ERRORS = Counter(
    "aifactory_reconcile_errors_total",
    "Reconciliations that failed, by controller.",
    ["controller"],
)
RECONCILE_SECONDS = Histogram(
    "aifactory_reconcile_duration_seconds", "Time one reconciliation took.", ["controller"]
)
PLACED_REPLICAS = Gauge(
    "aifactory_placed_replicas",
    "Replicas placed per deployment and module.",
    ["deployment", "module"],
)
UNPLACED_REPLICAS = Gauge(
    "aifactory_unplaced_replicas", "Replicas of a deployment that found no module.", ["deployment"]
)
FLEET_GPUS = Gauge(
    "aifactory_module_gpus",
    "GPUs of a module by state (allocatable, allocated).",
    ["module", "state"],
)
MODULE_READY = Gauge("aifactory_module_ready", "1 when the module is Ready.", ["module"])
DEPLOYMENT_CARBON = Gauge(
    "aifactory_deployment_carbon_intensity_grams_per_kwh",
    "Replica-weighted carbon intensity of the modules serving a deployment.",
    ["deployment"],
)
DEPLOYMENT_EMISSIONS = Gauge(
    "aifactory_deployment_emissions_grams_per_hour",
    "gCO2e per hour of a deployment's current placement (GPUs x power x PUE x intensity).",
    ["deployment"],
)
DEPLOYMENT_LATENCY_ONLY_EMISSIONS = Gauge(
    "aifactory_deployment_latency_only_emissions_grams_per_hour",
    "gCO2e per hour the placement of a carbon-blind (latency-only) solve would emit.",
    ["deployment"],
)
DEPLOYMENT_MEAN_RTT = Gauge(
    "aifactory_deployment_mean_rtt_seconds",
    "Replica-weighted mean round-trip time of a deployment's placement.",
    ["deployment"],
)
MIGRATIONS_TOTAL = Counter(
    "aifactory_migrations_total", "Placement changes applied, by deployment.", ["deployment"]
)
MEMBER_REQUESTS = Counter(
    "aifactory_member_requests_total",
    "Requests to clusters (hub included), by cluster, verb and HTTP code (0: no answer).",
    ["cluster", "verb", "code"],
)
MEMBER_ERRORS = Counter(
    "aifactory_member_errors_total",
    "Failed writes to member clusters, by cluster and reason.",
    ["cluster", "reason"],
)
QUEUE_DEPTH = Gauge(
    "aifactory_placement_queue_depth", "Deployments waiting to be planned by the placement loop."
)
BATCH_SIZE = Histogram(
    "aifactory_placement_batch_size",
    "Deployments planned together in one placement cycle.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
CYCLE_SECONDS = Histogram(
    "aifactory_placement_cycle_duration_seconds",
    "Time one placement cycle took (read, plan, hand over to the executor).",
)
PLACEMENT_LATENCY = Histogram(
    "aifactory_placement_latency_seconds",
    "Time from a spec change being seen to the deployment being placed (status written).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)
PLACEMENT_GAP = Gauge(
    "aifactory_fleet_plan_gap_ratio",
    "The rebalancer's fleet plan: cost / lower bound - 1 (0 = proven optimal; NaN = no bound).",
)
PLACEMENT_COST = Gauge("aifactory_fleet_plan_cost", "The rebalancer's fleet plan: total cost.")
PLACEMENT_BOUND = Gauge(
    "aifactory_fleet_plan_lower_bound", "The rebalancer's fleet plan: valid lower bound on cost."
)
RTT_PAIRS = Gauge(
    "aifactory_measured_rtt_pairs", "(region, module) pairs whose RTT comes from measurements."
)
RTT_SOURCE_ERRORS = Counter(
    "aifactory_measured_rtt_source_errors_total",
    "Failed reads of a measured-RTT source (the last good table stays in force).",
    ["source"],
)
IS_LEADER = Gauge("aifactory_leader", "1 on the replica that plans and writes, 0 on standbys.")


@contextmanager
def observe(controller: str) -> Iterator[None]:
    """Count and time one reconciliation; exceptions are counted and re-raised."""
    RECONCILE_TOTAL.labels(controller).inc()
    start = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(controller).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(controller).observe(time.perf_counter() - start)


_placed_modules: dict[str, set[str]] = {}
_series_lock = threading.Lock()


def set_deployment(
    ref: str,
    placed: dict[str, int],
    unplaced: int,
    carbon: float | None,
    emissions: tuple[float, float, float | None] | None = None,
) -> None:
    """Publish one deployment's placement; modules it left are dropped from the series."""
    with _series_lock:
        before = _placed_modules.get(ref, set())
        for module in before - set(placed):
            with suppress(KeyError):
                PLACED_REPLICAS.remove(ref, module)
        for module, n in placed.items():
            PLACED_REPLICAS.labels(ref, module).set(n)
        _placed_modules[ref] = set(placed)
    UNPLACED_REPLICAS.labels(ref).set(unplaced)
    if carbon is not None:
        DEPLOYMENT_CARBON.labels(ref).set(carbon)
    if emissions is not None:
        now, blind, rtt_ms = emissions
        DEPLOYMENT_EMISSIONS.labels(ref).set(now)
        DEPLOYMENT_LATENCY_ONLY_EMISSIONS.labels(ref).set(blind)
        if rtt_ms is not None:
            DEPLOYMENT_MEAN_RTT.labels(ref).set(rtt_ms / 1000.0)


def forget_deployment(ref: str) -> None:
    """Drop a deleted deployment's series, so dashboards do not show ghosts."""
    with _series_lock:
        modules = _placed_modules.pop(ref, set())
    for module in modules:
        with suppress(KeyError):
            PLACED_REPLICAS.remove(ref, module)
    for gauge in (
        UNPLACED_REPLICAS,
        DEPLOYMENT_CARBON,
        DEPLOYMENT_EMISSIONS,
        DEPLOYMENT_LATENCY_ONLY_EMISSIONS,
        DEPLOYMENT_MEAN_RTT,
    ):
        with suppress(KeyError):
            gauge.remove(ref)
    with suppress(KeyError):
        MIGRATIONS_TOTAL.remove(ref)


# ------------------------------------------------------------------------- accountability
# Decision records (aifactory.audit), module reliability, measured-latency SLOs, compliance.
RECORDS_WRITTEN = Counter(
    "aifactory_records_written_total", "PlacementRecords appended to the hub's chain."
)
RECORDS_DROPPED = Counter(
    "aifactory_records_dropped_total",
    "Decision records not written, by reason (QueueFull, NotLeader, MemberRejected...).",
    ["reason"],
)
RECORDS_QUEUE = Gauge(
    "aifactory_records_queue_depth", "Decision records waiting for the record keeper."
)
RECORD_APPEND_SECONDS = Histogram(
    "aifactory_record_append_duration_seconds",
    "Time to append one record: hash, sign and create it on the hub.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
RECORDS_PRUNED = Counter(
    "aifactory_records_pruned_total", "PlacementRecords deleted by retention (count and age)."
)
RECORDS_SIGNED = Gauge(
    "aifactory_records_signed", "1 when records are signed with the configured Ed25519 key."
)
MODULE_READY_FRACTION = Gauge(
    "aifactory_module_ready_fraction",
    "Fraction of the reliability window the module was Ready.",
    ["module"],
)
MODULE_OUTAGES = Gauge(
    "aifactory_module_outages", "Outages of the module within the reliability window.", ["module"]
)
MODULE_OUTAGE_SECONDS = Gauge(
    "aifactory_module_outage_seconds",
    "Seconds the module was not Ready within the reliability window.",
    ["module"],
)
MODULE_LONGEST_OUTAGE = Gauge(
    "aifactory_module_longest_outage_seconds",
    "The module's longest outage within the reliability window, seconds.",
    ["module"],
)
MODULE_FAILOVERS = Gauge(
    "aifactory_module_failovers_caused",
    "Placement changes that moved replicas off the module because it became unusable.",
    ["module"],
)
MODULE_HEARTBEAT_LATENCY = Gauge(
    "aifactory_module_heartbeat_latency_seconds",
    "Round-trip time of the module's last heartbeat.",
    ["module"],
)
MODULE_SLO_BREACHES = Gauge(
    "aifactory_module_slo_breaches",
    "Measured-latency SLO breaches declared on the module.",
    ["module"],
)
SLO_BREACHED = Gauge(
    "aifactory_slo_breached",
    "1 while a deployment's measured latency from a region to a module breaks its SLO.",
    ["deployment", "region", "module"],
)
MEASURED_LATENCY = Gauge(
    "aifactory_measured_latency_milliseconds",
    "Last measured latency of a deployment from a region to a module (spec.slo.measured).",
    ["deployment", "region", "module"],
)
SLO_BREACHES_TOTAL = Counter(
    "aifactory_slo_breaches_total",
    "Measured-latency SLO breaches declared, by deployment, region and module.",
    ["deployment", "region", "module"],
)
COMPLIANCE_RESULTS = Gauge(
    "aifactory_compliance_results",
    "Results of a deployment's compliance report (OpenReports), by result (pass, fail, warn).",
    ["deployment", "result"],
)
