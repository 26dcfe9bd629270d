"""Service levels enforced: measured latency per (region, module) held to slo.maxLatencyMs.

`fetch_latency` reads `spec.slo.measured.prometheus` (the demand source's client and error
reasons, `signals.demand.query_prometheus`); `fold` turns readings into breaches with the
signal tolerance (a pair is breached once its latency stayed above the SLO for
`tolerance_seconds` and `min_readings` readings in a row, and clears the same way below it);
`condition` says it on the InferenceDeployment. Pure except for the one HTTP request.

A breached pair is out of the SLO for placement (the MeasuredLatencySLO filter): replicas
serving that region leave that module, make-before-break. Once they left, the pair has no
measurements; it clears after the tolerance but stays out of placement for `hold_seconds`, so
the rebalancer does not send replicas straight back to where users suffered.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aifactory.api import Condition, ConditionStatus
from aifactory.api.deployment import LatencyUnit, PrometheusLatencySource
from aifactory.signals.demand import REASON_BAD_RESULT, DemandSignalError, query_prometheus

CONDITION = "SLOBreached"
REASON_BREACHED = "MeasuredLatencyAboveSLO"
REASON_WITHIN = "WithinSLO"
REASON_NOT_MEASURED = "NotMeasuredYet"
EVENT_BREACHED = "SLOBreached"
EVENT_RESTORED = "SLORestored"

#: (region, module)
Pair = tuple[str, str]


def _hhmmss(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_latency(
    source: PrometheusLatencySource, *, now: datetime | None = None
) -> dict[Pair, float]:
    """Measured latency in milliseconds per (region, module); the highest of a pair's series.

    Series without both labels, or with a NaN, infinite or negative value, are left out.
    Raises DemandSignalError (PrometheusUnreachable, QueryFailed, BadResult).
    """
    payload = query_prometheus(source, now)
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise DemandSignalError(
            REASON_BAD_RESULT,
            f"query must return an instant vector with {source.region_label!r} and "
            f"{source.module_label!r} labels",
        )
    scale = 1000.0 if source.unit is LatencyUnit.SECONDS else 1.0
    out: dict[Pair, float] = {}
    for item in data.get("result") or []:
        try:
            metric, (_, raw) = item["metric"], item["value"]
            value = float(raw) * scale
        except (KeyError, TypeError, ValueError) as err:
            raise DemandSignalError(REASON_BAD_RESULT, f"malformed sample {item!r}") from err
        if not isinstance(metric, dict):
            continue
        region, module = metric.get(source.region_label), metric.get(source.module_label)
        if not region or not module or not math.isfinite(value) or value < 0:
            continue
        out[(region, module)] = max(out.get((region, module), 0.0), value)
    return out


@dataclass(frozen=True, slots=True)
class PairState:
    """One (region, module) pair's readings against the SLO."""

    last_ms: float | None = None
    last_seen: datetime | None = None
    #: readings above the SLO in a row (not breached yet), since when
    over_since: datetime | None = None
    over_count: int = 0
    #: readings at or below it (or missing) in a row while breached, since when
    under_since: datetime | None = None
    under_count: int = 0
    breached_since: datetime | None = None
    breach_ms: float | None = None
    #: out of placement until then after a breach that cleared without measurements
    held_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A breach declared or cleared, for Events, metrics and the module's reliability."""

    kind: str  # "breach" | "clear"
    region: str
    module: str
    latency_ms: float | None
    since: datetime
    why: str = ""


def fold(
    states: Mapping[Pair, PairState],
    readings: Mapping[Pair, float],
    max_ms: float,
    now: datetime,
    *,
    tolerance_seconds: float,
    min_readings: int,
    hold_seconds: float,
) -> tuple[dict[Pair, PairState], list[Transition]]:
    """Fold one round of readings into the pair states; returns the states and transitions."""
    out: dict[Pair, PairState] = {}
    transitions: list[Transition] = []

    def lasted(since: datetime | None, count: int) -> bool:
        return (
            since is not None
            and (now - since).total_seconds() >= tolerance_seconds
            and count >= min_readings
        )

    for pair in sorted(set(states) | set(readings)):
        st = states.get(pair, PairState())
        ms = readings.get(pair)
        if ms is not None:
            st = dataclasses.replace(st, last_ms=ms, last_seen=now)
        if st.breached_since is None:
            if ms is not None and ms > max_ms:
                since = st.over_since or now
                count = st.over_count + 1
                if lasted(since, count):
                    st = dataclasses.replace(
                        st,
                        over_since=None,
                        over_count=0,
                        breached_since=now,
                        breach_ms=ms,
                        held_until=None,
                    )
                    transitions.append(Transition("breach", *pair, ms, since))
                else:
                    st = dataclasses.replace(st, over_since=since, over_count=count)
            else:
                st = dataclasses.replace(st, over_since=None, over_count=0)
        else:
            if ms is not None and ms > max_ms:
                st = dataclasses.replace(st, under_since=None, under_count=0)
            else:
                since = st.under_since or now
                count = st.under_count + 1
                if lasted(since, count):
                    held = None
                    why = f"measured at or below {max_ms:g} ms"
                    if ms is None:
                        held = now + timedelta(seconds=hold_seconds)
                        why = "no longer measured (no traffic from the region there)"
                    transitions.append(
                        Transition("clear", *pair, ms, st.breached_since or now, why)
                    )
                    st = PairState(last_ms=st.last_ms, last_seen=st.last_seen, held_until=held)
                else:
                    st = dataclasses.replace(st, under_since=since, under_count=count)
        keep = (
            st.breached_since is not None
            or st.over_since is not None
            or (st.held_until is not None and now < st.held_until)
            or pair in readings
        )
        if keep:
            out[pair] = st
    return out, transitions


def excluded(states: Mapping[Pair, PairState], now: datetime) -> frozenset[Pair]:
    """Pairs placement treats as out of the SLO: breached, or held after a breach."""
    return frozenset(
        pair
        for pair, st in states.items()
        if st.breached_since is not None or (st.held_until is not None and now < st.held_until)
    )


def condition(
    states: Mapping[Pair, PairState] | None,
    max_ms: float,
    generation: int | None,
    now: datetime,
    *,
    error: str | None = None,
) -> Condition:
    """SLOBreached: True while a pair is breached, naming region, module and latency."""
    if states is None:
        return Condition(
            type=CONDITION,
            status=ConditionStatus.UNKNOWN,
            reason=REASON_NOT_MEASURED,
            message=error or "measured latency not read yet",
            observed_generation=generation,
        )
    breached = sorted((p, s) for p, s in states.items() if s.breached_since is not None)
    if breached:
        by_region: dict[str, list[str]] = {}
        for (region, module), s in breached:
            since = _hhmmss(s.breached_since) if s.breached_since else "?"
            ms = s.last_ms if s.last_ms is not None else s.breach_ms
            by_region.setdefault(region, []).append(
                f"{module} ({ms:.0f} ms, breached since {since})"
                if ms is not None
                else f"{module} (breached since {since})"
            )
        text = "; ".join(f"{r}: {', '.join(ms)}" for r, ms in sorted(by_region.items()))
        return Condition(
            type=CONDITION,
            status=ConditionStatus.TRUE,
            reason=REASON_BREACHED,
            message=f"measured latency above {max_ms:g} ms for {text}; those modules stop "
            "serving those regions (make-before-break)",
            observed_generation=generation,
        )
    held = sorted(p for p, s in states.items() if s.held_until is not None and now < s.held_until)
    message = f"measured latency within {max_ms:g} ms in every region and module measured"
    if held:
        message += "; kept out of placement after a breach: " + ", ".join(
            f"{r} on {m}" for r, m in held
        )
    if error:
        message += f"; last read failed ({error}), keeping the last readings"
    return Condition(
        type=CONDITION,
        status=ConditionStatus.FALSE,
        reason=REASON_WITHIN,
        message=message,
        observed_generation=generation,
    )


__all__ = [
    "CONDITION",
    "EVENT_BREACHED",
    "EVENT_RESTORED",
    "REASON_BREACHED",
    "REASON_NOT_MEASURED",
    "REASON_WITHIN",
    "PairState",
    "Transition",
    "condition",
    "excluded",
    "fetch_latency",
    "fold",
]
