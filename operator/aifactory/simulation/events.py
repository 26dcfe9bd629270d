"""Injected events: modules failing and coming back, cordons, demand spikes. Pure.

One event per line, `TIME KIND TARGET [ARGS]` (`aifactoryctl simulate --event "..."` or
`--events FILE`, `#` starts a comment):

- `module-down MODULE`: NotReady from TIME; its replicas stay for tolerationSeconds, then are
  re-placed;
- `module-up MODULE`: Ready again; nothing moves back by itself;
- `cordon MODULE`: schedulable false; running replicas stay, nothing new lands;
- `uncordon MODULE`: schedulable again;
- `demand-spike REGION FACTOR DURATION`: every deployment's demand in that region x FACTOR.

TIME is ISO 8601 (`2022-03-01T10:00Z`; no offset means UTC); DURATION is a number with s, m, h
or d (`90m`, `6h`). Module events take effect at the first rebalance slot at or after TIME
(slots are `rebalance_interval` long); a spike multiplies the demand of every step it overlaps.
`module-down` stands for the moment the operator marks the module NotReady (in a real fleet,
`heartbeat_timeout` after it stops answering).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

MODULE_KINDS = ("module-down", "module-up", "cordon", "uncordon")
KINDS = (*MODULE_KINDS, "demand-spike")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class EventError(ValueError):
    """An event line that cannot be read; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Event:
    """One injected event. `at` is UTC; factor and duration (seconds) only for demand-spike."""

    at: datetime
    kind: str
    target: str
    factor: float = 1.0
    duration_s: float = 0.0

    @property
    def epoch(self) -> float:
        return self.at.timestamp()

    def describe(self) -> str:
        stamp = self.at.strftime("%Y-%m-%dT%H:%MZ")
        if self.kind == "demand-spike":
            return f"{stamp} demand-spike {self.target} x{self.factor:g} for {self.duration_s:g}s"
        return f"{stamp} {self.kind} {self.target}"


def parse_time(text: str) -> datetime:
    """ISO 8601 with Z or an offset; naive times are UTC."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"{text!r} is not an ISO 8601 time (e.g. 2022-03-01T10:00Z)") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_duration(text: str) -> float:
    """Seconds in `90m`, `6h`, `2d`, `30s`."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise EventError(f"duration {text!r}: expected a number with s, m, h or d, e.g. 6h")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_event(text: str) -> Event:
    """One event line (module docstring); raises EventError quoting it."""
    parts = shlex.split(text, comments=True)
    if len(parts) < 3:
        raise EventError(f"{text!r}: expected TIME KIND TARGET, e.g. 2022-03-01T10:00Z cordon oslo")
    at, kind, target, *args = parts
    if kind not in KINDS:
        raise EventError(f"{text!r}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    when = parse_time(at)
    if kind == "demand-spike":
        if len(args) != 2:
            raise EventError(f"{text!r}: demand-spike needs REGION FACTOR DURATION")
        try:
            factor = float(args[0])
        except ValueError:
            raise EventError(f"{text!r}: factor {args[0]!r} is not a number") from None
        if not factor >= 0:
            raise EventError(f"{text!r}: factor must be >= 0")
        return Event(when, kind, target, factor, parse_duration(args[1]))
    if args:
        raise EventError(f"{text!r}: {kind} takes no arguments after the module")
    return Event(when, kind, target)


def read_events(lines: Iterable[str]) -> tuple[Event, ...]:
    """Events from lines (blank lines and # comments skipped), sorted by time (stable)."""
    out = [parse_event(line) for line in lines if line.split("#", 1)[0].strip()]
    return tuple(sorted(out, key=lambda e: e.at))


def check_targets(
    events: Sequence[Event], modules: Iterable[str], regions: Iterable[str]
) -> list[str]:
    """Problems: events naming a module or region the scenario does not have."""
    mods, regs = set(modules), set(regions)
    out = []
    for e in events:
        if e.kind in MODULE_KINDS and e.target not in mods:
            out.append(f"{e.describe()}: no module {e.target}")
        elif e.kind == "demand-spike" and e.target not in regs:
            out.append(f"{e.describe()}: no demand region {e.target}")
    return out


@dataclass(frozen=True)
class ModuleStates:
    """Per slot and module: usable (replicas may stay) and placeable (new ones may land).

    The operator's rule (`controllers.fleet.module_use`): Ready and schedulable: both;
    cordoned: usable only; NotReady for less than tolerationSeconds: usable only; longer:
    neither. Arrays are [slots, modules] in the given module order.
    """

    usable: np.ndarray
    placeable: np.ndarray


def module_states(
    modules: Sequence[str],
    schedulable: Sequence[bool],
    events: Sequence[Event],
    slot_times: np.ndarray,
    *,
    toleration_s: float,
) -> ModuleStates:
    """Usable/placeable of every module at every slot time (epoch seconds), from the events."""
    n_t, n_m = len(slot_times), len(modules)
    usable = np.ones((n_t, n_m), np.bool_)
    placeable = np.ones((n_t, n_m), np.bool_)
    for i, name in enumerate(modules):
        mine = [e for e in events if e.kind in MODULE_KINDS and e.target == name]
        ready = np.ones(n_t, np.bool_)
        down_since = np.full(n_t, np.nan)
        cordoned = np.full(n_t, not schedulable[i])
        for e in mine:
            after = slot_times >= e.epoch
            if e.kind == "module-down":
                newly = after & ready  # a module already down keeps its first NotReady time
                down_since[newly] = e.epoch
                ready[after] = False
            elif e.kind == "module-up":
                ready[after] = True
                down_since[after] = np.nan
            elif e.kind == "cordon":
                cordoned[after] = True
            else:
                cordoned[after] = False
        age = slot_times - down_since
        within = ~ready & (age < toleration_s)
        usable[:, i] = ready | within
        placeable[:, i] = ready & ~cordoned
    return ModuleStates(usable, placeable)


def spike_factors(
    events: Sequence[Event], region: str, step_times: np.ndarray, step_s: float
) -> np.ndarray:
    """Demand multiplier of one region at every step: the product of the spikes overlapping it."""
    out = np.ones(len(step_times))
    for e in events:
        if e.kind != "demand-spike" or e.target != region:
            continue
        start, end = e.epoch, e.epoch + e.duration_s
        overlap = (step_times < end) & (step_times + step_s > start)
        out[overlap] *= e.factor
    return out


__all__ = [
    "KINDS",
    "MODULE_KINDS",
    "Event",
    "EventError",
    "ModuleStates",
    "check_targets",
    "module_states",
    "parse_duration",
    "parse_event",
    "parse_time",
    "read_events",
    "spike_factors",
]
