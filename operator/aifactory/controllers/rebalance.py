"""The rebalancer: re-solve the whole fleet every rebalanceInterval, then move deliberately.

Between rebalances a deployment keeps its running placement unless that placement breaks a
hard rule (module gone or NotReady past tolerationSeconds, a policy, capacity) or its spec or
demand changed: then it is repaired at once. Optimisation moves (cheaper, greener, closer) only
come from the fleet-wide plan, only when the engine's hysteresis says the gain is worth it, and
at most `disruptionBudget` replicas per deployment per interval. The member side
(`deployments.converge_members`) makes every move make-before-break.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aifactory.placement import (
    CurrentAssignment,
    Decision,
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    place_fleet,
)


@dataclass(frozen=True)
class Plan:
    """One fleet-wide solve: the decision per deployment and the placement it started from."""

    made_at: datetime
    decisions: Mapping[str, Decision]
    started_from: Mapping[str, tuple[tuple[str, int], ...]]


def placement_key(current: Sequence[CurrentAssignment]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((a.module, a.replicas) for a in current if a.replicas > 0))


def make_plan(
    now: datetime,
    workloads: Sequence[WorkloadView],
    modules: Sequence[ModuleView],
    policies: Sequence[PolicyView],
    settings: PlacementSettings,
) -> Plan:
    """Solve every deployment together; the engine applies hysteresis per deployment."""
    fleet = place_fleet(workloads, modules, policies, settings=settings)
    return Plan(
        made_at=now,
        decisions={d.deployment: d for d in fleet.placements},
        started_from={w.key: placement_key(w.current) for w in workloads},
    )


@dataclass
class Step:
    """The next placement on the way to a target, and the moves it makes."""

    placement: tuple[CurrentAssignment, ...]
    moves: list[tuple[str, str, str, int]] = field(default_factory=list)  # (region, from, to, n)
    complete: bool = True


def step_towards(current: Sequence[CurrentAssignment], target: Decision, budget: int) -> Step:
    """Move at most `budget` replicas from `current` towards `target`, region by region.

    A move takes one replica serving region r off a module with more than the target wants and
    puts it on a module with fewer, so every region stays fully served throughout. Moves are
    chosen in a fixed order (largest shortfall first, then by name) for determinism.
    """

    def cells(pairs: Sequence[tuple[str, Mapping[str, int], int]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for module, regions, replicas in pairs:
            if regions:
                for r, k in regions.items():
                    if k:
                        out[(r, module)] = out.get((r, module), 0) + k
            elif replicas:
                out[("", module)] = out.get(("", module), 0) + replicas
        return out

    cur = cells([(a.module, a.regions, a.replicas) for a in current])
    tgt = cells([(a.module, a.regions, a.replicas) for a in target.assignments])
    regions = sorted({r for r, _ in cur} | {r for r, _ in tgt})
    moves: list[tuple[str, str, str, int]] = []
    left = budget
    nxt = dict(cur)
    for r in regions:
        surplus = sorted(
            ((cur.get((r, m), 0) - tgt.get((r, m), 0), m) for rr, m in cur if rr == r),
            key=lambda x: (-x[0], x[1]),
        )
        deficit = sorted(
            ((tgt.get((r, m), 0) - cur.get((r, m), 0), m) for rr, m in tgt if rr == r),
            key=lambda x: (-x[0], x[1]),
        )
        surplus = [(n, m) for n, m in surplus if n > 0]
        deficit = [(n, m) for n, m in deficit if n > 0]
        si = di = 0
        while left > 0 and si < len(surplus) and di < len(deficit):
            (sn, sm), (dn, dm) = surplus[si], deficit[di]
            k = min(sn, dn, left)
            nxt[(r, sm)] = nxt.get((r, sm), 0) - k
            nxt[(r, dm)] = nxt.get((r, dm), 0) + k
            moves.append((r, sm, dm, k))
            left -= k
            surplus[si], deficit[di] = (sn - k, sm), (dn - k, dm)
            if surplus[si][0] == 0:
                si += 1
            if deficit[di][0] == 0:
                di += 1
    by_module: dict[str, dict[str, int]] = {}
    for (r, m), k in nxt.items():
        if k > 0:
            by_module.setdefault(m, {})[r] = k
    placement = tuple(
        CurrentAssignment(m, sum(rs.values()), {r: k for r, k in rs.items() if r})
        for m, rs in sorted(by_module.items())
    )
    done = {k: v for k, v in nxt.items() if v} == {k: v for k, v in tgt.items() if v}
    return Step(placement, moves, complete=done)


def with_current(workload: WorkloadView, current: Sequence[CurrentAssignment]) -> WorkloadView:
    return dataclasses.replace(workload, current=tuple(current))
