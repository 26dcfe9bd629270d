"""Fleet-wide placement: every replica of every deployment against shared capacity at once.

Approach (see relaxation.py for the program and the bound):

1. Priorities. Deployments are solved by priority value, highest first, each value on the
   capacity the higher ones left (lexicographic, as the brief asks). Within one value:
2. LP by column generation. The LP relaxation over every feasible (deployment, region, module)
   pair is solved by column generation: it starts from the `candidates_per_region` cheapest
   modules of each (deployment, region) and the modules it runs on now, and each round prices
   every feasible pair with the LP's duals and adds the ones that could lower the cost, so no
   capacity the optimum needs is pruned away. HiGHS keeps the model between rounds and restarts
   from the last optimal basis. It stops when the LP is within `lp_gap_target` of the
   Lagrangian bound, when nothing prices in, or after `lp_rounds` solves. Above
   `lp_exact_spread_max_rows` demand rows the LP leaves minModules >= 2 to the bounds and the
   repair (`Relaxation.exact_spread`).
3. Integer answer. The LP's replica counts are rounded down (capacity still holds) and
   repaired: freed room goes to replicas below their guaranteed count first, then to modules a
   deployment lacks for its spread, then to the rest; then the greedy's moves and swaps over
   the generated columns. When the generated program is small (`milp_max_variables`), a MILP
   over its columns (HiGHS with node and time limits) is solved too and the cheaper answer
   kept. If HiGHS fails, the greedy solver below answers alone.
4. The bound. `FleetDecision.lower_bound` is the best Lagrangian bound at the prices of the LPs
   solved: valid over every feasible pair whatever the columns, so `gap` is honest.
5. Stability. A deployment keeps its running placement when the new solution would lower its
   cost by less than the hysteresis fraction and the running placement breaks no hard rule and
   still fits; those placements are reserved first and the others re-solved around them. The
   solve itself prefers running (region, module) pairs by a small stickiness bonus.

The greedy solver (the fallback, and the repair's moves): deployments in order of regret
(Vogel's rule), each assigned with the incremental-mode algorithm on the capacity left, then a
few passes of local improvement: replicas move to cheaper candidates with room, pairs of
replicas of different deployments swap modules when the sum drops, leftovers take freed room.

Costs carry a tie-break of at most 1e-9 by module name order, every loop runs in sorted order
and HiGHS stops on round and node limits (the time limits are safety nets), so the same input
gives the same output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from aifactory.placement.assignment import (
    Alloc,
    Outcome,
    PoolParts,
    assign_one,
    build_decision,
    current_allocation,
    deployment_cost,
    hysteresis,
    module_usage,
    running_pools,
    stickiness_bonus,
    take_pools,
    tiebreak,
)
from aifactory.placement.cycle import prepare
from aifactory.placement.framework import FloatArray, IntArray
from aifactory.placement.model import (
    ModuleView,
    PlacementSettings,
    PolicyView,
    WorkloadView,
    unplaced_penalty,
)
from aifactory.placement.relaxation import Relaxation
from aifactory.placement.result import FleetDecision
from aifactory.placement.state import FleetState, WorkloadState

#: One deployment's solution: module-level allocation and the pool parts it takes.
Solution = tuple[Alloc, PoolParts]

_EPS = 1e-9
#: Modules `_Greedy._spread_swap` tries per replica (the cheapest d could use).
_SPREAD_SWAP_MODULES = 64


@dataclass(slots=True)
class _Problem:
    """The deployments being solved, their effective costs and candidate modules."""

    fleet: FleetState
    states: list[WorkloadState]
    #: Per deployment: cost used for optimising (brief cost + tie-break - stickiness).
    cost: list[FloatArray] = field(default_factory=list)
    bonus: list[FloatArray | None] = field(default_factory=list)
    #: Per deployment, per region: candidate modules sorted by cost (`_with_cands`, or the
    #: columns column generation kept).
    cands: list[list[list[int]]] = field(default_factory=list)
    cand_sets: list[list[frozenset[int]]] = field(default_factory=list)


def _build_problem(fleet: FleetState, states: list[WorkloadState]) -> _Problem:
    """Effective costs (brief cost, tie-break, minus stickiness) of every deployment."""
    prob = _Problem(fleet, states)
    tb = tiebreak(fleet.n)
    for ws in states:
        c = ws.cost + tb[None, :]
        bonus = stickiness_bonus(fleet, ws)
        if bonus is not None:
            c = c - bonus
        prob.cost.append(c)
        prob.bonus.append(bonus)
    return prob


def _with_cands(prob: _Problem) -> _Problem:
    """The greedy's candidate lists: per (deployment, region) the `candidates_per_region`
    cheapest feasible modules plus the running ones (the greedy's own assignment still looks
    beyond them when they are full)."""
    if prob.cands:
        return prob
    k = max(1, prob.fleet.settings.candidates_per_region)
    for d, ws in enumerate(prob.states):
        c, bonus = prob.cost[d], prob.bonus[d]
        per_region: list[list[int]] = []
        for r in range(len(ws.region_names)):
            idx = np.flatnonzero(ws.feasible[r])
            if ws.demand[r] <= 0 or len(idx) == 0:
                per_region.append([])
                continue
            keep = max(k, ws.spread)
            if len(idx) > keep:
                top = idx[np.argpartition(c[r, idx], keep - 1)[:keep]]
                if bonus is not None:
                    running = np.flatnonzero((bonus[r] > 0) & ws.feasible[r])
                    top = np.union1d(top, running)
                idx = top
            idx = idx[np.argsort(c[r, idx], kind="stable")]
            per_region.append(idx.tolist())
        prob.cands.append(per_region)
        prob.cand_sets.append([frozenset(x) for x in per_region])
    return prob


def _objective(prob: _Problem, d: int, alloc: Alloc) -> float:
    """The optimised cost of one deployment's allocation (brief cost, tie-break, stickiness)."""
    ws, s = prob.states[d], prob.fleet.settings
    total, placed, modules = 0.0, 0, set()
    for (r, m), k in alloc.items():
        total += k * float(prob.cost[d][r, m])
        placed += k
        modules.add(m)
    total += unplaced_penalty(s, ws.total, ws.guaranteed, placed)
    total += s.spread_cost * max(0, ws.spread - len(modules))
    return total


# --------------------------------------------------------------------------------------------
# Greedy solver (regret order, per-deployment assignment, local improvement)


class _Greedy:
    """Greedy fleet solver on dynamic, pool-level capacity.

    Deployments go in order of regret: the cost a deployment's busiest region loses if its best
    module fills up (a region with a single candidate first). Each is assigned with the
    incremental-mode algorithm on the capacity left. Then, a few passes of: replicas move to
    cheaper candidate modules that have room, pairs of replicas of different deployments swap
    modules when that lowers the sum, and unplaced replicas take any room that was freed.
    """

    def __init__(
        self,
        prob: _Problem,
        active: Sequence[int],
        pool_free: IntArray,
        power_free_w: FloatArray,
    ) -> None:
        self.prob = prob
        self.fleet = prob.fleet
        self.active = list(active)
        self.pool_free = pool_free
        self.power_free = power_free_w
        self.alloc: dict[int, Alloc] = {}
        #: d -> module -> pool -> replicas
        self.parts: dict[int, dict[int, dict[int, int]]] = {}
        #: d -> module -> replicas (all regions)
        self.count: dict[int, dict[int, int]] = {}
        #: module -> (deployment, region) pairs with replicas there
        self.holders: dict[int, set[tuple[int, int]]] = {}
        self.spread = {d: prob.states[d].spread for d in self.active}
        self.guaranteed = {d: prob.states[d].guaranteed for d in self.active}
        self.total = {d: prob.states[d].total for d in self.active}
        self.gpus = {d: prob.states[d].workload.gpus_per_replica for d in self.active}
        #: module -> (deployment, region) pairs that have it as a candidate
        self.wanted_by: dict[int, set[tuple[int, int]]] = {}
        for d in self.active:
            for r, cand in enumerate(prob.cands[d]):
                for m in cand:
                    self.wanted_by.setdefault(m, set()).add((d, r))
        #: d -> region -> candidate module -> cost (dict lookups beat numpy scalar indexing)
        self.cand_cost: dict[int, list[dict[int, float]]] = {
            d: [
                dict(zip(cand, prob.cost[d][r, cand].tolist(), strict=True)) if cand else {}
                for r, cand in enumerate(prob.cands[d])
            ]
            for d in self.active
        }

    def run(self, *, place: bool = True) -> dict[int, Solution]:
        """Assign (unless seeded: `place` False), improve, and return every solution."""
        if place:
            for d in self._order():
                self._place(d)
        for _ in range(self.fleet.settings.improve_passes):
            changed = False
            for d in self.active:
                changed |= self._improve_moves(d)
            changed |= self._improve_swaps()
            for d in self.active:
                changed |= self._fill_unplaced(d)
            if not changed:
                break
        out: dict[int, Solution] = {}
        for d in self.active:
            alloc = {k: v for k, v in sorted(self.alloc[d].items()) if v > 0}
            parts = {
                m: sorted((p, n) for p, n in pools.items() if n > 0)
                for m, pools in sorted(self.parts[d].items())
                if any(n > 0 for n in pools.values())
            }
            out[d] = (alloc, parts)
        return out

    def _order(self) -> list[int]:
        unplaced = self.fleet.settings.unplaced_cost
        keyed: list[tuple[float, str, int]] = []
        for d in self.active:
            ws = self.prob.states[d]
            regret = 0.0
            for r, cand in enumerate(self.prob.cands[d]):
                if not cand:
                    continue
                costs = self.cand_cost[d][r]
                gap = unplaced if len(cand) == 1 else costs[cand[1]] - costs[cand[0]]
                regret = max(regret, gap * float(ws.demand[r]))
            keyed.append((-regret, ws.key, d))
        keyed.sort()
        return [d for _, _, d in keyed]

    def _place(self, d: int) -> None:
        """Assign one deployment on what is left, with the incremental-mode algorithm."""
        ws = self.prob.states[d]
        g = self.gpus[d]
        usable = np.flatnonzero(ws.feasible_any)
        cap, _ = self.fleet.capacity(
            ws.eligible_pool, g, self.pool_free, self.power_free, modules=usable
        )
        alloc = assign_one(self.fleet, ws, capacity=cap, bonus=self.prob.bonus[d])
        alloc, parts = take_pools(self.fleet, ws, alloc, self.pool_free, self.power_free)
        self.alloc[d] = dict(alloc)
        self.parts[d] = {m: dict(pp) for m, pp in parts.items()}
        self.count[d] = {}
        for (r, m), k in alloc.items():
            self.count[d][m] = self.count[d].get(m, 0) + k
            self.holders.setdefault(m, set()).add((d, r))

    # one replica at a time --------------------------------------------------------------------
    def _cost(self, d: int, r: int, m: int) -> float:
        c = self.cand_cost[d][r].get(m)
        return float(self.prob.cost[d][r, m]) if c is None else c

    def _room(self, d: int, m: int) -> bool:
        ws = self.prob.states[d]
        return bool(
            self.fleet.fit_pools(
                m, ws.eligible_pool, self.gpus[d], self.pool_free, self.power_free, 1
            )
        )

    def _add(self, d: int, r: int, m: int, p: int) -> None:
        self.fleet.consume([(p, 1)], self.gpus[d], self.pool_free, self.power_free)
        self.alloc[d][(r, m)] = self.alloc[d].get((r, m), 0) + 1
        pools = self.parts[d].setdefault(m, {})
        pools[p] = pools.get(p, 0) + 1
        self.count[d][m] = self.count[d].get(m, 0) + 1
        self.holders.setdefault(m, set()).add((d, r))

    def _take1(self, d: int, r: int, m: int) -> int | None:
        """Put one replica of (d, r) on m; the pool used, or None when it does not fit."""
        ws = self.prob.states[d]
        got = self.fleet.fit_pools(
            m, ws.eligible_pool, self.gpus[d], self.pool_free, self.power_free, 1
        )
        if not got:
            return None
        self._add(d, r, m, got[0][0])
        return got[0][0]

    def _drop1(self, d: int, r: int, m: int, pool: int | None = None) -> int:
        """Take one replica of (d, r) off m, from `pool` or else its highest-power pool; the
        pool freed."""
        pools = self.parts[d][m]
        p = pool
        if p is None:
            p = max(
                (q for q, n in pools.items() if n > 0),
                key=lambda q: (self.fleet.pool_power_w[q], q),
            )
        pools[p] -= 1
        self.fleet.consume([(p, 1)], self.gpus[d], self.pool_free, self.power_free, sign=-1)
        self.alloc[d][(r, m)] -= 1
        if self.alloc[d][(r, m)] == 0:
            del self.alloc[d][(r, m)]
            self.holders[m].discard((d, r))
        self.count[d][m] -= 1
        if self.count[d][m] == 0:
            del self.count[d][m]
        return p

    def _spread_ok(self, d: int, a: int, b: int) -> bool:
        """Whether moving one replica of d from a to b keeps the spread requirement."""
        counts = self.count[d]
        used = len(counts)
        after = used - (counts.get(a, 0) == 1) + (counts.get(b, 0) == 0)
        return after >= min(self.spread[d], used)

    # improvement --------------------------------------------------------------------------------
    def _improve_moves(self, d: int) -> bool:
        """Move replicas to a cheaper candidate with room, keeping the spread."""
        changed = False
        for r, a in sorted(self.alloc[d]):
            ca = self._cost(d, r, a)
            for b in self.prob.cands[d][r]:
                if self.cand_cost[d][r][b] >= ca - _EPS:
                    break
                while self.alloc[d].get((r, a), 0) > 0 and self._spread_ok(d, a, b):
                    if self._take1(d, r, b) is None:
                        break
                    self._drop1(d, r, a)
                    changed = True
                if self.alloc[d].get((r, a), 0) == 0:
                    break
        return changed

    def _improve_swaps(self) -> bool:
        """Swap one replica of (d1, r1) on a with one of (d2, r2) on b when the sum drops."""
        changed = False
        for d1 in self.active:
            for r1, a in sorted(self.alloc[d1]):
                c1 = self.cand_cost[d1][r1]
                c1a = self._cost(d1, r1, a)
                for b in self.prob.cands[d1][r1]:
                    c1b = c1[b]
                    if c1b >= c1a - _EPS or self.alloc[d1].get((r1, a), 0) <= 0:
                        break
                    partners = self.holders.get(b, set()) & self.wanted_by.get(a, set())
                    for d2, r2 in sorted(partners):
                        c2a = self.cand_cost[d2][r2][a]
                        if d2 == d1:
                            continue
                        if c1a + self._cost(d2, r2, b) - c1b - c2a <= _EPS:
                            continue
                        if self._swap(d1, r1, a, d2, r2, b):
                            changed = True
                            break
        return changed

    def _swap(self, d1: int, r1: int, a: int, d2: int, r2: int, b: int) -> bool:
        """Exchange one replica each; undone when either does not fit after the release."""
        if self.alloc[d2].get((r2, b), 0) <= 0:
            return False
        if not self._spread_ok(d1, a, b) or not self._spread_ok(d2, b, a):
            return False
        p1 = self._drop1(d1, r1, a)
        p2 = self._drop1(d2, r2, b)
        q1 = self._take1(d1, r1, b)
        q2 = self._take1(d2, r2, a) if q1 is not None else None
        if q1 is not None and q2 is not None:
            return True
        if q1 is not None:
            self._drop1(d1, r1, b, q1)
        self._add(d1, r1, a, p1)
        self._add(d2, r2, b, p2)
        return False

    def _repair_spread(self, d: int) -> bool:
        """Move replicas off modules holding several to candidate modules the deployment does
        not use yet, while it is short of its spread (each module short costs 1000)."""
        changed = False
        while 0 < len(self.count[d]) < self.spread[d]:
            best: tuple[float, int, int, int] | None = None
            for (r, a), k in sorted(self.alloc[d].items()):
                if k <= 0 or self.count[d].get(a, 0) < 2:
                    continue
                for b in self.prob.cands[d][r]:
                    if b in self.count[d] or not self._room(d, b):
                        continue
                    delta = self._cost(d, r, b) - self._cost(d, r, a)
                    if best is None or (delta, r, a, b) < best:
                        best = (delta, r, a, b)
                    break  # candidates are sorted: the first open one is the cheapest
            if best is None:
                best = self._spread_elsewhere(d)
            if best is None:
                if not self._spread_swap(d):
                    return changed
                changed = True
                continue
            _, r, a, b = best
            if self._take1(d, r, b) is None:
                return changed
            self._drop1(d, r, a)
            changed = True
        return changed

    def _spread_elsewhere(self, d: int) -> tuple[float, int, int, int] | None:
        """The cheapest move of one replica off a module holding several onto any feasible
        module the deployment does not use and that has room, candidates or not: column
        generation without exact spread (large fleets) keeps few modules per deployment."""
        ws = self.prob.states[d]
        best: tuple[float, int, int, int] | None = None
        cap: IntArray | None = None
        for (r, a), k in sorted(self.alloc[d].items()):
            if k <= 0 or self.count[d].get(a, 0) < 2:
                continue
            cost = self.prob.cost[d][r]
            if cap is None:
                usable = np.flatnonzero(ws.feasible_any)
                cap, _ = self.fleet.capacity(
                    ws.eligible_pool, self.gpus[d], self.pool_free, self.power_free, usable
                )
                for m in self.count[d]:
                    cap[m] = 0
            open_ = np.flatnonzero((cap > 0) & np.isfinite(cost) & ws.feasible[r])
            if len(open_) == 0:
                continue
            b = int(open_[np.argmin(cost[open_])])
            delta = float(cost[b]) - self._cost(d, r, a)
            if best is None or (delta, r, a, b) < best:
                best = (delta, r, a, b)
        return best

    def _cheapest_feasible(self, d: int, r: int, exclude: Iterable[int] = ()) -> list[int]:
        """The `_SPREAD_SWAP_MODULES` cheapest modules (d, r) may use, candidates or not,
        cheapest first, without those in `exclude`."""
        cost = self.prob.cost[d][r]
        ok = np.isfinite(cost) & self.prob.states[d].feasible[r]
        ok[list(exclude)] = False
        mods = np.flatnonzero(ok)
        best: list[int] = mods[np.argsort(cost[mods], kind="stable")][
            :_SPREAD_SWAP_MODULES
        ].tolist()
        return best

    def _spread_swap(self, d: int) -> bool:
        """Exchange one replica of d on a module holding several with one of another
        deployment on a module d does not use, both feasible where they land and the other
        keeping its spread; whether one was made.

        Under congestion no module has room, so `_spread_elsewhere` finds nothing; a module
        short costs `spread_cost` (1000), far more than the placement costs an exchange changes.
        The `_SPREAD_SWAP_MODULES` cheapest modules d could use are tried, cheapest first.
        """
        states, cost_of = self.prob.states, self.prob.cost
        spread_cost = self.fleet.settings.spread_cost
        used = self.count[d]
        g = self.gpus[d]
        for (r, a), k in sorted(self.alloc[d].items()):
            if k <= 0 or used.get(a, 0) < 2:
                continue
            cost = cost_of[d][r]
            c1a = self._cost(d, r, a)
            for b in self._cheapest_feasible(d, r, exclude=used):
                gain = spread_cost + c1a - float(cost[b])
                for d2, r2 in sorted(self.holders.get(b, ())):
                    if d2 == d or self.gpus[d2] != g or not states[d2].feasible[r2, a]:
                        continue
                    c2a = float(cost_of[d2][r2, a])
                    if not math.isfinite(c2a) or c2a - self._cost(d2, r2, b) >= gain - _EPS:
                        continue
                    if self._swap(d, r, a, d2, r2, b):
                        return True
        return False

    def _premium(self, d: int, placed: int, modules: int, new_module: bool) -> float:
        """What one more replica of d saves besides its placement cost, d having `placed`
        replicas on `modules` modules: the unplaced cost, the guaranteed premium below the
        guaranteed count, the spread cost when it lands on a module d lacks for its spread."""
        s = self.fleet.settings
        worth = s.unplaced_cost
        if placed < self.guaranteed[d]:
            worth += s.guaranteed_unplaced_cost - s.unplaced_cost
        if new_module and modules < self.spread[d]:
            worth += s.spread_cost
        return worth

    def _evict_for(self, d: int) -> bool:
        """Place one more replica of d in place of one of another deployment with the same
        GPUs per replica, when that lowers the objective; whether one was placed.

        Under congestion every GPU is taken, and what a replica is worth differs: one that
        brings a deployment up to its guaranteed count (10,000) or to a module it lacks for its
        spread (+1000) outweighs one above another's guaranteed count (1000). Rounding the LP
        and filling in name order does not see that trade; this does, one replica at a time.
        Only replicas worth more than the plain unplaced cost are tried: trades of placement
        cost alone are the moves' and swaps' job.
        """
        ws, cost_of = self.prob.states[d], self.prob.cost
        count = self.count[d]
        placed = sum(count.values())
        if placed >= self.total[d]:
            return False
        unplaced_cost = self.fleet.settings.unplaced_cost
        if placed >= self.guaranteed[d] and len(count) >= self.spread[d]:
            return False
        g = self.gpus[d]
        for r in range(len(ws.region_names)):
            placed_r = sum(k for (rr, _), k in self.alloc[d].items() if rr == r)
            if placed_r >= int(ws.demand[r]):
                continue
            cost = cost_of[d][r]
            for b in self._cheapest_feasible(d, r):
                worth = self._premium(d, placed, len(count), b not in count)
                if worth <= unplaced_cost:
                    continue
                gain = worth - float(cost[b])
                for d2, r2 in sorted(self.holders.get(b, ())):
                    if d2 == d or self.gpus[d2] != g or self.alloc[d2].get((r2, b), 0) <= 0:
                        continue
                    count2 = self.count[d2]
                    left = count2[b] > 1
                    loss = self._premium(
                        d2, sum(count2.values()) - 1, len(count2) - (not left), not left
                    ) - self._cost(d2, r2, b)
                    if loss >= gain - _EPS:
                        continue
                    p = self._drop1(d2, r2, b)
                    if self._take1(d, r, b) is not None:
                        return True
                    self._add(d2, r2, b, p)
        return False

    def _fill_unplaced(self, d: int, upto: int | None = None) -> bool:
        """Place replicas left over earlier on room that improvement freed (cheapest first),
        until the deployment has `upto` replicas placed (default: all)."""
        ws = self.prob.states[d]
        changed = False
        budget = (ws.total if upto is None else upto) - sum(self.count[d].values())
        for r in range(len(ws.region_names)):
            missing = int(ws.demand[r]) - sum(k for (rr, _), k in self.alloc[d].items() if rr == r)
            missing = min(missing, budget)
            if missing <= 0:
                continue
            budget -= missing
            for m in self.prob.cands[d][r]:
                while missing > 0 and self._take1(d, r, m) is not None:
                    missing -= 1
                    changed = True
                if missing == 0:
                    break
            if missing > 0:
                # Beyond the candidates: column generation keeps the modules the LP wanted,
                # which rounding may have filled; any feasible module with room beats none.
                got = self._fill_elsewhere(d, r, missing)
                missing -= got
                changed |= got > 0
            budget += missing
        return changed

    def _fill_elsewhere(self, d: int, r: int, missing: int) -> int:
        """Place up to `missing` replicas of (d, r) on its cheapest feasible modules with room,
        candidates or not; the number placed."""
        ws = self.prob.states[d]
        cost = self.prob.cost[d][r]
        usable = np.flatnonzero(np.isfinite(cost) & ws.feasible[r])
        if len(usable) == 0:
            return 0
        cap, _ = self.fleet.capacity(
            ws.eligible_pool, self.gpus[d], self.pool_free, self.power_free, usable
        )
        open_ = usable[cap[usable] > 0]
        placed = 0
        for m in open_[np.argsort(cost[open_], kind="stable")].tolist():
            while placed < missing and self._take1(d, r, m) is not None:
                placed += 1
            if placed == missing:
                break
        return placed


# --------------------------------------------------------------------------------------------
# Repair of a rounded LP answer (the greedy's moves, seeded)


def _seed(greedy: _Greedy, sol: dict[int, Solution]) -> None:
    """Start the greedy from a given solution instead of its own assignment."""
    for d in greedy.active:
        alloc, parts = sol.get(d, ({}, {}))
        greedy.alloc[d] = dict(alloc)
        greedy.parts[d] = {m: dict(pp) for m, pp in parts.items()}
        greedy.count[d] = {}
        g = greedy.gpus[d]
        for pp in parts.values():
            greedy.fleet.consume(pp, g, greedy.pool_free, greedy.power_free)
        for (r, m), k in alloc.items():
            greedy.count[d][m] = greedy.count[d].get(m, 0) + k
            greedy.holders.setdefault(m, set()).add((d, r))


def _fill_order(prob: _Problem, active: Sequence[int]) -> list[int]:
    """Fewer GPUs per replica first (more replicas per GPU), then by name."""
    keyed = [(prob.states[d].workload.gpus_per_replica, prob.states[d].key, d) for d in active]
    return [d for *_, d in sorted(keyed)]


def _repair(greedy: _Greedy) -> dict[int, Solution]:
    """Fill what rounding left unplaced in the order of what a replica is worth (up to the
    guaranteed counts first, then a first replica for every deployment short of modules, then
    the rest), restore spread, then the greedy's improvement passes."""
    order = _fill_order(greedy.prob, greedy.active)
    states = greedy.prob.states
    for d in order:
        greedy._fill_unplaced(d, upto=states[d].guaranteed)
    for d in order:
        if states[d].spread and not greedy.count[d]:
            greedy._fill_unplaced(d, upto=1)
    for d in order:
        greedy._fill_unplaced(d)
    for d in order:
        greedy._repair_spread(d)
    for d in order:
        while greedy._evict_for(d):
            pass
    return greedy.run(place=False)


# --------------------------------------------------------------------------------------------
# One priority value: column generation, rounding, MILP polish, greedy fallback


@dataclass(slots=True)
class _Level:
    sol: dict[int, Solution]
    solver: str
    #: Capacity prices of the LPs solved (for the fleet-wide bound) and bounds already proven
    #: on this level's relaxation.
    prices: list[tuple[FloatArray, FloatArray]]
    bounds: list[float]
    relaxation: Relaxation | None
    notes: list[str]


def _cands_from(prob: _Problem, rel: Relaxation) -> list[list[list[int]]]:
    """Per deployment, per region: the modules column generation kept, cheapest first."""
    n = prob.fleet.n
    out: list[list[list[int]]] = [
        [[] for _ in prob.states[d].region_names] for d in range(len(prob.states))
    ]
    q = rel.pairs // n
    m = rel.pairs % n
    bounds = np.searchsorted(q, np.arange(rel.n_rows + 1))
    for row in range(rel.n_rows):
        mods = m[bounds[row] : bounds[row + 1]]
        d = rel.deps[int(rel.rows.dep[row])]
        r = int(rel.rows.region[row])
        cost = rel.rows.cost[row, mods]
        out[d][r] = mods[np.argsort(cost, kind="stable")].tolist()
    return out


def _rounded(prob: _Problem, rel: Relaxation, x: FloatArray) -> dict[int, Solution]:
    """Floor the LP's replica counts: capacity rows have non-negative coefficients, so the
    floor keeps them."""
    fleet = prob.fleet
    k = np.floor(x + 1e-6).astype(np.int64)
    keep = np.flatnonzero(k > 0)
    by_pool: dict[int, dict[tuple[int, int], int]] = {d: {} for d in rel.deps}
    for j in keep.tolist():
        row = int(rel.col_q[j])
        d = rel.deps[int(rel.rows.dep[row])]
        key = (int(rel.rows.region[row]), int(rel.col_p[j]))
        by_pool[d][key] = by_pool[d].get(key, 0) + int(k[j])
    return {d: _from_pools(fleet, by_pool[d]) for d in rel.deps}


def _solve_level(
    prob: _Problem,
    active: Sequence[int],
    pool_free: IntArray,
    power_free_w: FloatArray,
    prove: bool = True,
) -> _Level:
    """Column generation on the LP, then an integer answer: the MILP over the generated columns
    when small, else the LP rounded down and repaired by the greedy's moves; the greedy alone
    when HiGHS fails. Without `prove`, no bounds: column generation stops when nothing prices
    in, on the round cap, or (relaxed spread) when a round gains less than the target."""
    fleet, s = prob.fleet, prob.fleet.settings
    notes: list[str] = []
    if s.fleet_solver == "greedy":
        alone = _Greedy(_with_cands(prob), active, pool_free.copy(), power_free_w.copy()).run()
        return _Level(alone, "greedy", [], [], None, notes)
    rel = Relaxation(fleet, prob.states, list(active), pool_free, power_free_w, prob.cost)
    q, m = rel.cheapest(s.candidates_per_region)
    rel.add(q, m)
    qs: list[IntArray] = []
    ms: list[IntArray] = []
    for i, d in enumerate(rel.deps):  # running modules stay candidates, for stickiness
        bonus = prob.bonus[d]
        if bonus is None:
            continue
        lo, hi = int(rel.rows.start[i]), int(rel.rows.start[i + 1])
        for row in range(lo, hi):
            mods = np.flatnonzero(bonus[int(rel.rows.region[row])] > 0)
            mods = mods[np.isfinite(rel.rows.cost[row, mods])]
            qs.append(np.full(len(mods), row, np.int64))
            ms.append(mods)
    if qs:
        rel.add(np.concatenate(qs), np.concatenate(ms))
    prices: list[tuple[FloatArray, FloatArray]] = []
    bounds: list[float] = []
    lp = None
    rounds = 0
    previous = math.inf
    for rounds in range(1, max(1, s.lp_rounds) + 1):
        lp = rel.solve_lp()
        if lp is None:
            break
        prices.append((lp.mu, lp.nu))
        if prove:
            bounds.append(max(rel.lagrangian_bound(lp.mu, lp.nu), rel.knapsack_bound(lp)))
        scale = max(abs(lp.objective), 1e-9)
        if rel.exact_spread:
            if bounds and lp.objective - max(bounds) <= s.lp_gap_target * scale:
                break
        elif previous - lp.objective <= s.lp_gap_target * scale:
            # Without exact spread the LP's objective may sit below the bounds (it counts
            # spread less), so compare it with itself: a round that gained less than the
            # target says the remaining columns are the tail.
            break
        previous = lp.objective
        if rel.complete:
            break  # every feasible pair is a column already: nothing can price in
        q, m = rel.price(lp)
        if len(q) == 0 or rounds == s.lp_rounds:
            break
        rel.add(q, m)
    if lp is None:
        notes.append("LP relaxation failed (HiGHS); greedy solver")
        alone = _Greedy(_with_cands(prob), active, pool_free.copy(), power_free_w.copy()).run()
        return _Level(alone, "greedy", prices, bounds, None, notes)
    notes.append(
        f"column generation: {rounds} LP solve(s), {len(rel.col_q):,} columns "
        f"({len(rel.pairs):,} module pairs) of {int(np.isfinite(rel.rows.cost).sum()):,} feasible"
    )
    cand_prob = _Problem(prob.fleet, prob.states, prob.cost, prob.bonus)
    cand_prob.cands = _cands_from(prob, rel)
    cand_prob.cand_sets = [[frozenset(c) for c in per] for per in cand_prob.cands]
    rounded = _rounded(prob, rel, lp.x)
    repair = _Greedy(cand_prob, active, pool_free.copy(), power_free_w.copy())
    _seed(repair, rounded)
    best, solver = _repair(repair), "lp+round"
    # The LP over the generated columns is a relaxation of the integer program over them
    # (with exact spread; the caps of `_x_cap` make it a restriction otherwise): an answer
    # that costs no more than it is optimal over those columns, and no MILP can do better
    # (it may break a tie differently from the MILP, never at a higher cost).
    found = sum(_objective(prob, d, best[d][0]) for d in active)
    settled = rel.exact_spread and found <= lp.objective + 1e-9 * abs(lp.objective) + 1e-6
    if not settled and 0 < len(rel.col_q) <= s.milp_max_variables:
        res = rel.solve_milp(time_limit=s.milp_time_limit_s, node_limit=s.milp_node_limit)
        if res is not None:
            exact = _rounded(prob, rel, res.x)
            if _fits(prob, exact, pool_free, power_free_w):
                g_obj = sum(_objective(prob, d, best[d][0]) for d in active)
                m_obj = sum(_objective(prob, d, exact[d][0]) for d in active)
                if m_obj <= g_obj + _EPS:
                    best, solver = exact, "lp+milp"
                    # Optimal over every generated column (to `milp_rel_gap`): re-solving a
                    # subset of deployments over the same columns cannot do better.
                    settled = res.optimal
            if not res.optimal:
                notes.append("MILP stopped at its node/time limit")
    if not settled:
        polished = _polish(prob, rel, lp.x, cand_prob.cands, best, active, pool_free, power_free_w)
        if polished is not None:
            best, solver = polished, "lp+round+milp"
    return _Level(best, solver, prices, bounds, rel, notes)


def _polish(
    prob: _Problem,
    rel: Relaxation,
    x: FloatArray,
    cands: list[list[list[int]]],
    sol: dict[int, Solution],
    active: Sequence[int],
    pool_free: IntArray,
    power_free_w: FloatArray,
) -> dict[int, Solution] | None:
    """Re-solve exactly the deployments rounding touched (a fractional LP value, a replica
    unplaced or a module short of spread), everyone else fixed: a MILP over their generated
    columns on the capacity the others leave, within the MILP limits. None when it does not
    help or is too large."""
    fleet, s = prob.fleet, prob.fleet.settings
    frac = np.abs(x - np.round(x)) > 1e-6
    touched = {rel.deps[int(rel.rows.dep[int(rel.col_q[j])])] for j in np.flatnonzero(frac)}
    for d in active:
        alloc = sol[d][0]
        ws = prob.states[d]
        placed = sum(alloc.values())
        if placed < ws.total or len({m for _, m in alloc}) < min(ws.spread, placed):
            touched.add(d)
    if not touched:
        return None
    unsettled = sorted(touched)
    pf, pw = pool_free.copy(), power_free_w.copy()
    for d in active:
        if d in touched:
            continue
        g = prob.states[d].workload.gpus_per_replica
        for pp in sol[d][1].values():
            fleet.consume(pp, g, pf, pw)
    sub = Relaxation(fleet, prob.states, unsettled, pf, pw, prob.cost)
    qs: list[IntArray] = []
    ms: list[IntArray] = []
    for row in range(sub.n_rows):
        d = sub.deps[int(sub.rows.dep[row])]
        mods = np.array(cands[d][int(sub.rows.region[row])], np.int64)
        if len(mods):
            mods = mods[np.isfinite(sub.rows.cost[row, mods])]
            qs.append(np.full(len(mods), row, np.int64))
            ms.append(mods)
    if qs:
        sub.add(np.concatenate(qs), np.concatenate(ms))
    if not 0 < len(sub.col_q) <= s.milp_max_variables:
        return None
    res = sub.solve_milp(time_limit=s.milp_time_limit_s, node_limit=s.milp_node_limit)
    if res is None:
        return None
    part = _rounded(prob, sub, res.x)
    if not _fits(prob, part, pf, pw):
        return None
    before = sum(_objective(prob, d, sol[d][0]) for d in unsettled)
    after = sum(_objective(prob, d, part[d][0]) for d in unsettled)
    if after >= before - _EPS:
        return None
    out = dict(sol)
    out.update(part)
    return out


def _from_pools(fleet: FleetState, by_pool: dict[tuple[int, int], int]) -> Solution:
    """Module-level allocation and pool parts of a pool-level (region, pool) solution."""
    alloc: Alloc = {}
    pools: dict[int, int] = {}
    for (r, p), k in sorted(by_pool.items()):
        m = int(fleet.pool_module[p])
        alloc[(r, m)] = alloc.get((r, m), 0) + k
        pools[p] = pools.get(p, 0) + k
    parts: PoolParts = {}
    for p, k in sorted(pools.items()):
        parts.setdefault(int(fleet.pool_module[p]), []).append((p, k))
    return alloc, parts


def _fits(
    prob: _Problem, sol: dict[int, Solution], pool_free: IntArray, power_free_w: FloatArray
) -> bool:
    """Whether a solution respects pool GPUs and module power (guards against rounding)."""
    fleet = prob.fleet
    pf, pw = pool_free.copy(), power_free_w.copy()
    for d in sorted(sol):
        g = prob.states[d].workload.gpus_per_replica
        for _m, parts in sorted(sol[d][1].items()):
            fleet.consume(parts, g, pf, pw)
    return _within(pf, pw, pool_free, power_free_w)


def _within(pf: IntArray, pw: FloatArray, pf0: IntArray, pw0: FloatArray) -> bool:
    """No pool below zero GPUs and no module below zero watts unless it started there (other
    tenants may already exceed a budget; we then add nothing to it)."""
    pools_ok = bool((pf >= np.minimum(pf0, 0)).all())
    power_ok = bool((pw >= np.minimum(pw0, 0.0) - 1e-3).all())
    return pools_ok and power_ok


# --------------------------------------------------------------------------------------------
# Public entry points


def _states(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView],
    settings: PlacementSettings | None,
) -> tuple[FleetState, list[WorkloadState]]:
    fleet = modules if isinstance(modules, FleetState) else FleetState(modules, settings)
    pols = tuple(policies)
    states = [prepare(fleet, wl, pols) for wl in sorted(workloads, key=lambda w: w.key)]
    if len({ws.key for ws in states}) != len(states):
        raise ValueError("deployment keys must be unique")
    return fleet, states


def lower_bound(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    rounds: int = 50,
) -> float:
    """A lower bound on the fleet-wide cost over every feasible (deployment, region, module),
    priorities and hysteresis aside: the Lagrangian bound at the duals of the LP relaxation,
    solved by column generation for at most `rounds` LP solves (to optimality when it
    converges earlier). Valid whatever the rounds; tighter with more.
    """
    fleet, states = _states(workloads, modules, policies, settings)
    prob = _build_problem(fleet, states)
    rel = Relaxation(
        fleet, states, list(range(len(states))), fleet.pool_free, fleet.power_free_w, prob.cost
    )
    rel.add(*rel.cheapest(fleet.settings.candidates_per_region))
    best = rel.lagrangian_bound(np.zeros(fleet.n_pools), np.zeros(fleet.n))
    for _ in range(max(1, rounds)):
        lp = rel.solve_lp()
        if lp is None:
            break
        best = max(best, rel.lagrangian_bound(lp.mu, lp.nu), rel.knapsack_bound(lp))
        q, m = rel.price(lp)
        if len(q) == 0:
            break
        rel.add(q, m)
    return best


def exact_cost(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    time_limit: float | None = None,
) -> float | None:
    """The optimal fleet-wide cost: HiGHS on the unpruned MILP (every feasible pair), priorities
    and hysteresis aside; None unless optimality is proven (within `time_limit` seconds when
    given, else without any limit).

    A reference for tests and benchmarks.
    """
    fleet, states = _states(workloads, modules, policies, settings)
    prob = _build_problem(fleet, states)
    rel = Relaxation(
        fleet, states, list(range(len(states))), fleet.pool_free, fleet.power_free_w, prob.cost
    )
    rel.add(*rel.all_feasible())
    res = rel.solve_milp(time_limit=time_limit, node_limit=None)
    if res is None or not res.optimal:
        return None
    sol = _rounded(prob, rel, np.round(res.x))
    return sum(deployment_cost(fleet, states[d], sol[d][0]) for d in range(len(states)))


def _keep_running(
    prob: _Problem,
    level: Sequence[int],
    sol: dict[int, Solution],
    pool_free: IntArray,
    power_free: FloatArray,
    outcomes: dict[int, Outcome],
    stability: dict[int, str],
) -> None:
    """Hysteresis: reserve the running placements it keeps (in the free arrays)."""
    fleet, states = prob.fleet, prob.states
    for d in level:
        ws = states[d]
        if not ws.workload.current:
            continue
        current, why_not = current_allocation(fleet, ws)
        keep, text = hysteresis(fleet, ws, sol.get(d, ({}, {}))[0], current, why_not)
        stability[d] = text
        if keep and current is not None:
            # on the pools it runs on, not the cheapest ones: those may be another's
            prefer = running_pools(fleet, ws)
            got, parts = take_pools(fleet, ws, current, pool_free, power_free, prefer)
            if sum(got.values()) == sum(current.values()):
                outcomes[d] = Outcome(got, parts, True, text)
                continue
            # It no longer fits next to the placements kept before it: give it back, re-solve.
            for _m, pp in parts.items():
                fleet.consume(pp, ws.workload.gpus_per_replica, pool_free, power_free, sign=-1)
            stability[d] = "replaced: the running placement no longer fits"


def place_fleet(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    explain_all: bool | None = None,
    prove: bool = True,
    explain: bool = True,
) -> FleetDecision:
    """Re-solve every deployment together against shared capacity (fleet-wide mode).

    Lexicographic by priority: the deployments of the highest priority value are solved first
    on the free capacity, then the next value on what they left, and so on. Within one value,
    see the module docstring. The result carries a proven lower bound and the gap to it
    (`FleetDecision.lower_bound`, `.gap`) and the path taken (`.solver`). With `prove`
    False (the simulator, which replays thousands of solves and reads only the placements) no
    bound is computed and `lower_bound` is None; column generation then stops on pricing and
    the round cap alone, so the placements may differ from a proving solve's only where the
    bound would have stopped it early. Without `explain`, decisions carry placements, costs and
    stability but no explanation, message or audit findings (`build_decision`).
    """
    fleet, states = _states(workloads, modules, policies, settings)
    return place_prepared(fleet, states, explain_all=explain_all, prove=prove, explain=explain)


def place_prepared(
    fleet: FleetState,
    states: Sequence[WorkloadState],
    *,
    explain_all: bool | None = None,
    prove: bool = True,
    explain: bool = True,
) -> FleetDecision:
    """`place_fleet` on deployments already prepared against `fleet` (`cycle.prepare` with the
    same policies), sorted by key, keys unique. For callers that keep prepared states between
    solves (the simulator re-scores them when only carbon moved): preparing is an eighth of
    a small fleet's solve. Raises ValueError on duplicate or unsorted keys.
    """
    keys = [ws.key for ws in states]
    if keys != sorted(set(keys)):
        raise ValueError("deployment keys must be unique and sorted")
    states = list(states)
    prob = _build_problem(fleet, states)
    values = sorted({ws.workload.priority for ws in states}, reverse=True)
    pool_free = fleet.pool_free.copy()
    power_free = fleet.power_free_w.copy()
    outcomes: dict[int, Outcome] = {}
    stability: dict[int, str] = {}
    solvers: list[str] = []
    notes: list[str] = []
    prices: list[tuple[FloatArray, FloatArray]] = []
    first: _Level | None = None
    for value in values:
        level = [d for d, ws in enumerate(states) if ws.workload.priority == value]
        label = f"priority {value}: " if len(values) > 1 else ""
        res = _solve_level(prob, level, pool_free, power_free, prove)
        first = first or res
        prices += res.prices
        solvers.append(res.solver)
        notes += [label + n for n in res.notes]
        _keep_running(prob, level, res.sol, pool_free, power_free, outcomes, stability)
        rest = [d for d in level if d not in outcomes]
        sol = res.sol
        if len(rest) < len(level) and rest:
            again = _solve_level(prob, rest, pool_free, power_free, prove)
            sol = again.sol
            solvers.append(again.solver)
            notes += [
                f"{label}after keeping {len(level) - len(rest)} running placements: {n}"
                for n in again.notes
            ]
        for d in rest:
            alloc, parts = sol.get(d, ({}, {}))
            g = states[d].workload.gpus_per_replica
            for pp in parts.values():
                fleet.consume(pp, g, pool_free, power_free)
            outcomes[d] = Outcome(alloc, parts, False, stability.get(d, ""))
    if not _within(pool_free, power_free, fleet.pool_free, fleet.power_free_w):  # a bug
        raise AssertionError("fleet-wide solution oversubscribes capacity")
    everyone = range(len(states))
    decisions = tuple(
        build_decision(fleet, ws, outcomes[d], full=explain_all, explain=explain)
        for d, ws in enumerate(states)
    )
    total = sum(deployment_cost(fleet, states[d], outcomes[d].alloc) for d in everyone)
    bound = _fleet_bound(prob, first, len(values), prices, outcomes, notes) if prove else None
    return FleetDecision(
        placements=decisions,
        modules=module_usage(fleet, pool_free),
        total_cost=total,
        solver=",".join(dict.fromkeys(solvers)),
        lower_bound=bound,
        notes=tuple(notes),
    )


def _fleet_bound(
    prob: _Problem,
    first: _Level | None,
    levels: int,
    prices: list[tuple[FloatArray, FloatArray]],
    outcomes: dict[int, Outcome],
    notes: list[str],
) -> float | None:
    """The best Lagrangian bound over every deployment on the full free capacity, at the
    prices of every LP solved (and at zero prices)."""
    fleet, states = prob.fleet, prob.states
    if not states:
        return 0.0
    for d, out in outcomes.items():
        if out.kept_current and any(not states[d].feasible[r, m] for r, m in out.alloc):
            notes.append(
                f"no lower bound: {states[d].key} keeps a placement on a module closed to new "
                "replicas (a cordon), which the bound does not cover"
            )
            return None
    if first is not None and first.relaxation is not None and levels == 1:
        rel = first.relaxation
        found = list(first.bounds)
        prices = prices[len(first.prices) :]
    else:
        rel = Relaxation(
            fleet,
            states,
            list(range(len(states))),
            fleet.pool_free,
            fleet.power_free_w,
            prob.cost,
        )
        found = []
    zero = (np.zeros(fleet.n_pools), np.zeros(fleet.n))
    for mu, nu in [zero, *prices]:
        found.append(rel.lagrangian_bound(mu, nu))
    return max(found)
