"""Soft signals are tolerated before they move anything. Pure.

Live energy readings are noisy: a 15-second carbon spike above a deployment's
maxCarbonIntensity must not tear replicas down and bring them back a minute later. A reading
becomes *effective* (what placement uses) only once it has kept differing from the effective
value for `tolerance_s` seconds and at least `min_readings` readings in a row; a reading that
agrees again cancels the pending change. Both the raw and the effective value are recorded
(module status.energy and status.effectiveEnergy).

Demand uses the Horizontal Pod Autoscaler's rule instead (`stabilize_demand`): scale up at
once, scale down only to the highest reading of the stabilization window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Readings closer than this are the same value (float noise of feeds).
SAME = 1e-6


@dataclass(frozen=True, slots=True)
class Smoothed:
    """One signal's effective value, and the reading waiting to take over (if any)."""

    effective: float
    since: datetime
    #: The latest differing reading, when the disagreement started, how many readings.
    pending: float | None = None
    pending_since: datetime | None = None
    pending_count: int = 0

    def describe_pending(self, name: str) -> str | None:
        if self.pending is None or self.pending_since is None:
            return None
        stamp = self.pending_since.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{name} {self.pending:g} since {stamp} ({self.pending_count} readings)"


def smooth(
    state: Smoothed | None,
    reading: float,
    now: datetime,
    *,
    tolerance_s: float,
    min_readings: int,
) -> Smoothed:
    """Fold one reading into the state; returns the new state (the input is not changed).

    The first reading is effective at once (there is nothing to protect yet). A reading equal
    to the effective value clears any pending change.
    """
    if state is None:
        return Smoothed(reading, now)
    if abs(reading - state.effective) <= SAME:
        return Smoothed(state.effective, state.since)
    since = state.pending_since if state.pending is not None else now
    assert since is not None
    count = state.pending_count + 1 if state.pending is not None else 1
    if (now - since).total_seconds() >= tolerance_s and count >= min_readings:
        return Smoothed(reading, now)
    return Smoothed(state.effective, state.since, reading, since, count)


def stabilize_demand(
    history: tuple[tuple[datetime, Mapping[str, float]], ...],
    reading: Mapping[str, float],
    now: datetime,
    window_s: float,
) -> tuple[dict[str, float], tuple[tuple[datetime, Mapping[str, float]], ...]]:
    """The demand to place for: per region, the highest reading within the window.

    Returns (effective demand, the history to keep). Increases apply at once; a decrease only
    once every higher reading has left the window.
    """
    horizon = now - timedelta(seconds=window_s)
    kept = (*tuple((t, r) for t, r in history if t > horizon), (now, dict(reading)))
    effective: dict[str, float] = {}
    for _, r in kept:
        for region, value in r.items():
            effective[region] = max(effective.get(region, 0.0), value)
    return {k: effective[k] for k in reading}, kept


__all__ = ["Smoothed", "smooth", "stabilize_demand"]
