"""Module reliability: readiness over a rolling window, outages, failovers caused, heartbeat
latency and SLO breaches. Pure.

An outage is a period the module's Ready condition was not True, counted from the first time
the operator saw the module Ready (a module that never came up has had no outage: it has not
been in service). The ready fraction is 1 - (time not Ready within the window) / (the window,
or the time since the module was first seen Ready when that is shorter). The state lives in
the module's status (`status.reliability`), so a restarted operator goes on counting; an
outage that ended while no operator ran is closed when the operator next sees the module
Ready (its duration then includes the operator's own downtime).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aifactory.api.module import MAX_RELIABILITY_HISTORY, ModuleReliabilityStatus


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Outage:
    start: datetime
    end: datetime | None = None

    def overlap(self, lo: datetime, hi: datetime) -> float:
        end = self.end or hi
        return max(0.0, (min(end, hi) - max(self.start, lo)).total_seconds())

    def duration(self, now: datetime) -> float:
        return max(0.0, ((self.end or now) - self.start).total_seconds())


@dataclass(frozen=True, slots=True)
class Breach:
    """A measured-latency SLO breach declared on the module (SLO poller)."""

    deployment: str
    region: str
    start: datetime
    end: datetime | None = None
    latency_ms: float | None = None
    max_latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ReliabilityState:
    since: datetime | None = None
    outages: tuple[Outage, ...] = ()
    failovers: int = 0
    last_failover: datetime | None = None
    breaches: int = 0
    recent_breaches: tuple[Breach, ...] = ()
    heartbeat_latency_ms: float | None = None

    @property
    def ongoing(self) -> Outage | None:
        return self.outages[-1] if self.outages and self.outages[-1].end is None else None


def from_status(status: ModuleReliabilityStatus | None) -> ReliabilityState:
    """The state a module's status carries (what a restarted operator continues from)."""
    if status is None:
        return ReliabilityState()
    outages = [Outage(o.start, o.end) for o in status.recent_outages or []]
    if status.outage_since is not None and not any(o.end is None for o in outages):
        outages.append(Outage(status.outage_since))
    return ReliabilityState(
        since=status.since,
        outages=tuple(sorted(outages, key=lambda o: o.start)),
        failovers=status.failovers_caused or 0,
        last_failover=status.last_failover_time,
        breaches=status.slo_breaches or 0,
        recent_breaches=tuple(
            Breach(b.deployment, b.region, b.start, b.end, b.latency_ms, b.max_latency_ms)
            for b in status.recent_slo_breaches or []
        ),
        heartbeat_latency_ms=status.heartbeat_latency_ms,
    )


def step(
    state: ReliabilityState,
    *,
    ready: bool,
    now: datetime,
    window_seconds: float,
    not_ready_since: datetime | None = None,
    failovers: Iterable[datetime] = (),
    breaches: Iterable[Breach] = (),
    heartbeat_latency_ms: float | None = None,
) -> ReliabilityState:
    """Fold one observation into the state.

    `not_ready_since`: when Ready last turned False (its lastTransitionTime), so an outage that
    began while the operator was away starts when it really did. `breaches`: new ones (end
    unset) and ended ones (end set; matched by deployment, region and start).
    """
    since = state.since
    outages = list(state.outages)
    if since is None and ready:
        since = now
    ongoing = state.ongoing
    if not ready and since is not None and ongoing is None:
        start = max(since, min(not_ready_since or now, now))
        outages.append(Outage(start))
    elif ready and ongoing is not None:
        outages[-1] = dataclasses.replace(ongoing, end=now)
    horizon = now - timedelta(seconds=window_seconds)
    outages = [o for o in outages if o.end is None or o.end > horizon][-MAX_RELIABILITY_HISTORY:]
    times = sorted(failovers)
    n_failovers = state.failovers + len(times)
    last_failover = times[-1] if times else state.last_failover
    recent = list(state.recent_breaches)
    new = 0
    for b in breaches:
        if b.end is None:
            recent.append(b)
            new += 1
            continue
        for i, old in enumerate(recent):
            if (old.deployment, old.region, old.start) == (b.deployment, b.region, b.start):
                recent[i] = dataclasses.replace(old, end=b.end)
    if (times or new) and since is None:
        since = now
    return ReliabilityState(
        since=since,
        outages=tuple(outages),
        failovers=n_failovers,
        last_failover=last_failover,
        breaches=state.breaches + new,
        recent_breaches=tuple(recent[-MAX_RELIABILITY_HISTORY:]),
        heartbeat_latency_ms=(
            heartbeat_latency_ms if heartbeat_latency_ms is not None else state.heartbeat_latency_ms
        ),
    )


@dataclass(frozen=True, slots=True)
class Summary:
    ready_fraction: float
    outages: int
    outage_seconds: float
    longest_outage_seconds: float


def summarize(state: ReliabilityState, now: datetime, window_seconds: float) -> Summary:
    """Ready fraction, outages, downtime and the longest outage within the window."""
    if state.since is None:
        return Summary(1.0, 0, 0.0, 0.0)
    lo = max(state.since, now - timedelta(seconds=window_seconds))
    span = (now - lo).total_seconds()
    inside = [o for o in state.outages if o.overlap(lo, now) > 0 or o.end is None]
    down = sum(o.overlap(lo, now) for o in inside)
    if span <= 0:
        fraction = 0.0 if state.ongoing is not None else 1.0
    else:
        fraction = max(0.0, min(1.0, 1.0 - down / span))
    longest = max((o.duration(now) for o in inside), default=0.0)
    return Summary(fraction, len(inside), down, longest)


def status_patch(state: ReliabilityState, now: datetime, window_seconds: float) -> dict[str, Any]:
    """`status.reliability` as a merge patch body (every field, so lists are replaced)."""
    s = summarize(state, now, window_seconds)
    ongoing = state.ongoing
    return {
        "windowSeconds": window_seconds,
        "since": _iso(state.since) if state.since else None,
        "readyFraction": round(s.ready_fraction, 6),
        "outages": s.outages,
        "outageSeconds": round(s.outage_seconds, 1),
        "longestOutageSeconds": round(s.longest_outage_seconds, 1),
        "outageSince": _iso(ongoing.start) if ongoing else None,
        "recentOutages": [
            {
                "start": _iso(o.start),
                **(
                    {"end": _iso(o.end), "durationSeconds": round(o.duration(now), 1)}
                    if o.end
                    else {}
                ),
            }
            for o in state.outages
        ],
        "failoversCaused": state.failovers,
        "lastFailoverTime": _iso(state.last_failover) if state.last_failover else None,
        "heartbeatLatencyMs": (
            round(state.heartbeat_latency_ms, 1) if state.heartbeat_latency_ms is not None else None
        ),
        "sloBreaches": state.breaches,
        "recentSloBreaches": [
            {
                "deployment": b.deployment,
                "region": b.region,
                "start": _iso(b.start),
                **({"end": _iso(b.end)} if b.end else {}),
                **({"latencyMs": round(b.latency_ms, 1)} if b.latency_ms is not None else {}),
                **({"maxLatencyMs": b.max_latency_ms} if b.max_latency_ms is not None else {}),
            }
            for b in state.recent_breaches
        ],
        "updatedAt": _iso(now),
    }


#: Fields that change every round without anything happening: written at most every interval.
_DRIFTING = frozenset(
    {"readyFraction", "outageSeconds", "longestOutageSeconds", "heartbeatLatencyMs", "updatedAt"}
)


def worth_writing(
    previous: Mapping[str, Any] | None, new: Mapping[str, Any], *, age_seconds: float, every: float
) -> bool:
    """Write when something happened (an outage began or ended, a failover, a breach), or the
    drifting figures (ready fraction, downtime, heartbeat latency) are older than `every`."""
    if previous is None:
        return True
    steady = {k: v for k, v in new.items() if k not in _DRIFTING}
    before = {k: v for k, v in previous.items() if k not in _DRIFTING}
    if steady != before:
        return True
    return age_seconds >= every and {k: v for k, v in previous.items() if k != "updatedAt"} != {
        k: v for k, v in new.items() if k != "updatedAt"
    }


__all__ = [
    "Breach",
    "Outage",
    "ReliabilityState",
    "Summary",
    "from_status",
    "status_patch",
    "step",
    "summarize",
    "worth_writing",
]
