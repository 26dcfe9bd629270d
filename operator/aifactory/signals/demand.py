"""Live demand: requests per second per region from a Prometheus instant query.

Demand regions are declared in `spec.demand.regions` (name, country, coordinates) so that
placement, latency and sovereignty follow what is in Git; Prometheus only says how busy each
region is right now. `fetch_demand` reads the rates, `apply_demand` folds them into a copy of
the deployment. Both are synchronous and side-effect free apart from the one HTTP request, so
the controller decides when to poll and what to keep when the source is down.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aifactory.api.deployment import InferenceDeployment, PrometheusDemandSource
from aifactory.api.limits import MAX_REQUESTS_PER_SECOND

log = logging.getLogger(__name__)

#: Reasons of DemandSignalError, CamelCase so they can go straight into a condition.
REASON_UNREACHABLE = "PrometheusUnreachable"
REASON_QUERY_FAILED = "QueryFailed"
REASON_BAD_RESULT = "BadResult"
REASON_EMPTY_SAMPLE = "EmptySample"
REASON_OUT_OF_RANGE = "ReadingOutOfRange"

#: A vector of a few thousand series is a few hundred KiB; anything far bigger is a wrong query.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_QUERY_PATH = "/api/v1/query"


class DemandSignalError(Exception):
    """The live demand could not be read; the caller keeps the last known demand.

    `reason` is a CamelCase constant (REASON_*) fit for a condition reason, `message` the
    detail for humans.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, kw_only=True)
class DemandSample:
    """Requests per second per region name at one instant, as Prometheus reported them."""

    requests_per_second: dict[str, float]
    #: Evaluation time of the query (UTC).
    timestamp: datetime
    #: Series summed into requests_per_second.
    series: int = 0
    #: Series left out, and why (no region label, NaN, infinite or negative value).
    skipped: tuple[str, ...] = ()
    #: Warnings Prometheus attached to the result.
    warnings: tuple[str, ...] = field(default=())


def fetch_demand(
    source: PrometheusDemandSource | Mapping[str, Any], *, now: datetime | None = None
) -> DemandSample:
    """Run the source's instant query and sum the result per region label value.

    `now`, when given, is sent as the evaluation time (so a sample is reproducible and stamped
    with the caller's clock); otherwise Prometheus evaluates at its own current time. An empty
    vector is a valid answer (no series yet) and gives an empty sample: `apply_demand` refuses
    it, so a quiet or freshly restarted Prometheus never scales a deployment to zero.

    Raises DemandSignalError: PrometheusUnreachable (connection, timeout, gateway errors),
    QueryFailed (Prometheus refused or failed the query) or BadResult (not a JSON vector).
    """
    src = (
        source
        if isinstance(source, PrometheusDemandSource)
        else PrometheusDemandSource.model_validate(source)
    )
    payload = _query(src, now)
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise DemandSignalError(
            REASON_BAD_RESULT,
            f"query must return an instant vector with a {src.region_label!r} label, got {kind}",
        )
    result = data.get("result")
    if not isinstance(result, list):
        raise DemandSignalError(REASON_BAD_RESULT, "vector result is not a list")
    rps, series, skipped, stamp = _sum_by_region(result, src.region_label)
    if now is not None:
        stamp = now
    warnings = payload.get("warnings") or []
    return DemandSample(
        requests_per_second=rps,
        timestamp=(stamp or datetime.now(UTC)).astimezone(UTC),
        series=series,
        skipped=tuple(skipped),
        warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
    )


class PrometheusSource(Protocol):
    """What an instant query needs: a demand source, or a measured-latency source."""

    @property
    def url(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def timeout_seconds(self) -> float: ...


def query_prometheus(src: PrometheusSource, now: datetime | None = None) -> dict[str, Any]:
    """One instant query; the JSON answer. Raises DemandSignalError (PrometheusUnreachable,
    QueryFailed, BadResult), the same reasons whatever the query is for."""
    return _query(src, now)


def _query(src: PrometheusSource, now: datetime | None) -> dict[str, Any]:
    params = {"query": src.query, "timeout": f"{src.timeout_seconds:g}s"}
    if now is not None:
        params["time"] = f"{now.timestamp():.3f}"
    url = f"{src.url.rstrip('/')}{_QUERY_PATH}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=src.timeout_seconds) as response:
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise _http_error(src, err) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DemandSignalError(
            REASON_UNREACHABLE, f"cannot reach Prometheus at {src.url}: {reason}"
        ) from err
    if len(body) > MAX_RESPONSE_BYTES:
        raise DemandSignalError(
            REASON_BAD_RESULT, f"response larger than {MAX_RESPONSE_BYTES} bytes"
        )
    payload = _json(body)
    if payload is None:
        raise DemandSignalError(REASON_BAD_RESULT, f"{src.url}{_QUERY_PATH} did not return JSON")
    if payload.get("status") != "success":
        raise DemandSignalError(REASON_QUERY_FAILED, _prometheus_error(payload))
    return payload


def _http_error(src: PrometheusSource, err: urllib.error.HTTPError) -> DemandSignalError:
    """Prometheus answers a bad query with 400/422 and a JSON error; a proxy in front of a
    Prometheus that is down answers 502-504 with HTML, which is unreachability, not the query.
    """
    try:
        payload = _json(err.read(64 * 1024))
    except OSError:
        payload = None
    if payload is not None and payload.get("status") == "error":
        return DemandSignalError(REASON_QUERY_FAILED, _prometheus_error(payload))
    reason = REASON_UNREACHABLE if err.code in (502, 503, 504) else REASON_QUERY_FAILED
    return DemandSignalError(reason, f"{src.url}{_QUERY_PATH} answered HTTP {err.code}")


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _prometheus_error(payload: Mapping[str, Any]) -> str:
    kind = payload.get("errorType") or "error"
    return f"{kind}: {payload.get('error') or 'query failed without a message'}"


def _sum_by_region(
    result: list[Any], label: str
) -> tuple[dict[str, float], int, list[str], datetime | None]:
    rps: dict[str, float] = {}
    skipped: list[str] = []
    series = 0
    stamp: datetime | None = None
    for item in result:
        try:
            metric, (ts, raw) = item["metric"], item["value"]
            value = float(raw)
            when = datetime.fromtimestamp(float(ts), UTC)
        except (KeyError, TypeError, ValueError) as err:
            raise DemandSignalError(REASON_BAD_RESULT, f"malformed vector sample {item!r}") from err
        stamp = stamp or when
        region = metric.get(label) if isinstance(metric, dict) else None
        if not region:
            skipped.append(f"{_series_name(metric)}: no {label!r} label")
        elif not math.isfinite(value) or value < 0:
            skipped.append(f"{_series_name(metric)}: value {raw}")
        else:
            rps[region] = rps.get(region, 0.0) + value
            series += 1
    return rps, series, skipped, stamp


def _series_name(metric: Any) -> str:
    if not isinstance(metric, dict):
        return repr(metric)
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{metric.get('__name__', '')}{{{labels}}}"


def unmatched_regions(deployment: InferenceDeployment, sample: Mapping[str, float]) -> list[str]:
    """Region names in `sample` the deployment does not declare (sorted), for status/events.

    These usually mean a wrong regionLabel or a region missing from spec.demand.regions.
    """
    declared = {r.name for r in deployment.spec.demand.regions}
    return sorted(set(sample) - declared)


def apply_demand(
    deployment: InferenceDeployment, sample: Mapping[str, float]
) -> InferenceDeployment:
    """A copy of `deployment` whose demand regions carry the live requests per second.

    Regions absent from `sample` keep their declared rate (a region without traffic series is
    more likely unscraped than idle); names the deployment does not declare are ignored and
    logged (see `unmatched_regions`), because a region's location and country only come from
    the spec. An empty sample is refused with DemandSignalError(EmptySample): it almost always
    means a broken query or a restarted Prometheus, and applying it would scale to the minimum.
    """
    if not sample:
        raise DemandSignalError(
            REASON_EMPTY_SAMPLE,
            f"no demand series for {deployment.ref}; keeping the last known demand",
        )
    bad = {name: v for name, v in sample.items() if not math.isfinite(v) or v < 0}
    if bad:
        raise DemandSignalError(
            REASON_BAD_RESULT, f"requests per second must be finite and >= 0, got {bad}"
        )
    huge = {
        name: v
        for name, v in sample.items()
        if v > MAX_REQUESTS_PER_SECOND and name in {r.name for r in deployment.spec.demand.regions}
    }
    if huge:
        # the same bound the CRD puts on spec.demand.regions[].requestsPerSecond: a reading
        # beyond it is a broken query, and replica counts derived from it would overflow
        raise DemandSignalError(
            REASON_OUT_OF_RANGE,
            "requests per second above the API's limit of "
            f"{MAX_REQUESTS_PER_SECOND:g}: "
            + ", ".join(f"{k}={v:g}" for k, v in sorted(huge.items())),
        )
    extra = unmatched_regions(deployment, sample)
    if extra:
        log.warning(
            "%s: ignoring demand for undeclared regions %s", deployment.ref, ", ".join(extra)
        )
    demand = deployment.spec.demand
    regions = [
        r.model_copy(update={"requests_per_second": float(sample[r.name])})
        if r.name in sample
        else r
        for r in demand.regions
    ]
    spec = deployment.spec.model_copy(
        update={"demand": demand.model_copy(update={"regions": regions})}
    )
    return deployment.model_copy(update={"spec": spec})


__all__ = [
    "REASON_BAD_RESULT",
    "REASON_EMPTY_SAMPLE",
    "REASON_OUT_OF_RANGE",
    "REASON_QUERY_FAILED",
    "REASON_UNREACHABLE",
    "DemandSample",
    "DemandSignalError",
    "PrometheusSource",
    "apply_demand",
    "fetch_demand",
    "query_prometheus",
    "unmatched_regions",
]
