"""Live tier shares: the fraction of a router's requests a tier serves, from Prometheus.

A share source is an instant query that returns one number in 0..1 (a scalar, or a vector of
exactly one series), typically an escalation rate over a rate window. Errors are the live
demand's (`DemandSignalError` with the same CamelCase reasons), so the controller keeps the
last good reading by the same rules.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aifactory.api.deployment import PrometheusDemandSource
from aifactory.api.router import PrometheusShareSource
from aifactory.signals.demand import (
    REASON_BAD_RESULT,
    REASON_EMPTY_SAMPLE,
    REASON_OUT_OF_RANGE,
    DemandSignalError,
    query_prometheus,
)


def fetch_share(source: PrometheusShareSource, *, now: datetime | None = None) -> float:
    """The share the query returns now; raises DemandSignalError (PrometheusUnreachable,
    QueryFailed, BadResult, EmptySample, ReadingOutOfRange)."""
    src = PrometheusDemandSource(
        url=source.url, query=source.query, timeout_seconds=source.timeout_seconds
    )
    payload = query_prometheus(src, now)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise DemandSignalError(REASON_BAD_RESULT, "the answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    raw: Any
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        raw = result[1]
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise DemandSignalError(
                REASON_EMPTY_SAMPLE, "the share query returned no series; keeping the last share"
            )
        if len(result) != 1:
            raise DemandSignalError(
                REASON_BAD_RESULT,
                f"the share query must return one series, got {len(result)} (aggregate it, e.g. "
                "with sum(...))",
            )
        try:
            raw = result[0]["value"][1]
        except (KeyError, IndexError, TypeError) as err:
            raise DemandSignalError(REASON_BAD_RESULT, f"malformed sample {result[0]!r}") from err
    else:
        raise DemandSignalError(
            REASON_BAD_RESULT, f"the share query must return a scalar or one series, got {kind}"
        )
    try:
        value = float(raw)
    except (TypeError, ValueError) as err:
        raise DemandSignalError(REASON_BAD_RESULT, f"not a number: {raw!r}") from err
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise DemandSignalError(REASON_OUT_OF_RANGE, f"a share must be within 0..1, got {raw}")
    return value


__all__ = ["fetch_share"]
