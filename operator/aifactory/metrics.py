"""Prometheus metrics of the operator, served on /metrics.

Names follow Prometheus conventions (`_total` counters, `_seconds` histograms) and carry only
object names as labels: never anything from a Secret.
"""

from __future__ import annotations

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
MIGRATIONS_TOTAL = Counter(
    "aifactory_migrations_total", "Placement changes applied, by deployment.", ["deployment"]
)


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


def forget_deployment(ref: str, modules: list[str]) -> None:
    """Drop a deleted deployment's series, so dashboards do not show ghosts."""
    for module in modules:
        with suppress(KeyError):
            PLACED_REPLICAS.remove(ref, module)
    for gauge in (UNPLACED_REPLICAS, DEPLOYMENT_CARBON):
        with suppress(KeyError):
            gauge.remove(ref)
