"""Fleet-wide placement: every replica of every deployment against shared capacity at once.

Approach (chosen so a reconcile cycle stays bounded on two cores):

1. Candidates. For each (deployment, demand region) keep the K cheapest feasible modules
   (`candidates_per_region`, default 8) plus the modules it runs on now. Far modules almost
   never help, and dropping them shrinks the program by two orders of magnitude.
2. Greedy, always (it is cheap and is both the fallback and the yardstick). Deployments go in
   order of regret (how much a deployment's busiest region loses if its best module fills up:
   Vogel's rule); each is assigned with the incremental-mode algorithm on the capacity left
   (vectorised, falling back beyond the K candidates when they are full). Then a few passes of
   local improvement: replicas move to cheaper candidates with room, pairs of replicas of
   different deployments swap modules when the sum drops, leftovers take freed room.
3. MILP, when the program is small enough (`milp_max_variables` columns, 10,000 by default):
   integer replica counts x[d,r,p] per candidate GPU pool, unplaced slack u[d,r] (cost 1000),
   one binary y[d,m] per candidate module of a deployment with minModules > 1 and a shortfall
   s[d] (cost 1000); rows: demand per region, GPUs per pool, power per module, spread. The
   greedy's modules are added to the candidates, so the MILP can only do better. Solved by
   HiGHS (scipy.optimize.milp) within a node limit (deterministic) and a time limit (a safety
   net); the cheaper of the MILP and greedy answers wins, and the greedy one is used when
   HiGHS fails. Above the threshold the greedy answer stands: on uncongested fleets it is
   within 0.01% of the MILP (see docs/benchmarks.md), and the MILP's time grows much faster.
4. Stability. A deployment keeps its running placement when the new solution would lower its
   cost by less than the hysteresis fraction and the running placement breaks no hard rule and
   still fits; those placements are reserved first and the others re-solved around them. The
   solve itself prefers running (region, module) pairs by a small stickiness bonus.

Costs carry a tie-break of at most 1e-9 by module name order and every loop runs in sorted
order, so the same input gives the same output (unless HiGHS hits its time limit before its
node limit, which the defaults avoid on instances below the threshold).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

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
    stickiness_bonus,
    take_pools,
    tiebreak,
)
from aifactory.placement.cycle import prepare
from aifactory.placement.framework import FloatArray, IntArray
from aifactory.placement.model import ModuleView, PlacementSettings, PolicyView, WorkloadView
from aifactory.placement.result import FleetDecision
from aifactory.placement.state import FleetState, WorkloadState

#: One deployment's solution: module-level allocation and the pool parts it takes.
Solution = tuple[Alloc, PoolParts]

_EPS = 1e-9


@dataclass(slots=True)
class _Problem:
    """The deployments being solved, their effective costs and candidate modules."""

    fleet: FleetState
    states: list[WorkloadState]
    #: Per deployment: cost used for optimising (brief cost + tie-break - stickiness).
    cost: list[FloatArray] = field(default_factory=list)
    bonus: list[FloatArray | None] = field(default_factory=list)
    #: Per deployment, per region: candidate modules sorted by cost (pruned to K).
    cands: list[list[list[int]]] = field(default_factory=list)
    cand_sets: list[list[frozenset[int]]] = field(default_factory=list)


def _build_problem(
    fleet: FleetState, states: list[WorkloadState], candidates: int | None = -1
) -> _Problem:
    """Effective costs and candidate lists pruned to `candidates` per region (step 1).

    -1 takes the setting; None keeps every feasible module (for exact reference solves).
    """
    prob = _Problem(fleet, states)
    if candidates == -1:
        candidates = fleet.settings.candidates_per_region
    k = fleet.n if candidates is None else max(1, candidates)
    tb = tiebreak(fleet.n)
    for ws in states:
        c = ws.cost + tb[None, :]
        bonus = stickiness_bonus(fleet, ws)
        if bonus is not None:
            c = c - bonus
        prob.cost.append(c)
        prob.bonus.append(bonus)
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
    total += s.unplaced_cost * (ws.total - placed)
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

    def run(self) -> dict[int, Solution]:
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

    def _fill_unplaced(self, d: int) -> bool:
        """Place replicas left over earlier on room that improvement freed (cheapest first)."""
        ws = self.prob.states[d]
        changed = False
        for r in range(len(ws.region_names)):
            missing = int(ws.demand[r]) - sum(k for (rr, _), k in self.alloc[d].items() if rr == r)
            if missing <= 0:
                continue
            for m in self.prob.cands[d][r]:
                while missing > 0 and self._take1(d, r, m) is not None:
                    missing -= 1
                    changed = True
                if missing == 0:
                    break
        return changed


# --------------------------------------------------------------------------------------------
# MILP solver


@dataclass(slots=True)
class _MilpResult:
    sol: dict[int, Solution]
    optimal: bool
    bound: float | None


#: Per deployment, per region: extra candidate modules for the MILP (the greedy's choices).
Extra = dict[int, list[set[int]]]


def _milp_candidates(prob: _Problem, d: int, extra: Extra | None) -> list[list[int]]:
    """The pruned candidates plus the modules the greedy solution uses, so the MILP's optimum
    can never be worse than the greedy answer even when pruning was too tight."""
    if not extra or d not in extra:
        return prob.cands[d]
    out: list[list[int]] = []
    for r, cand in enumerate(prob.cands[d]):
        more = extra[d][r] - prob.cand_sets[d][r] if r < len(extra[d]) else set()
        out.append(cand + sorted(more))
    return out


def _greedy_extra(sol: dict[int, Solution]) -> Extra:
    out: Extra = {}
    for d, (alloc, _) in sol.items():
        regions = max((r for r, _ in alloc), default=-1) + 1
        sets: list[set[int]] = [set() for _ in range(regions)]
        for r, m in alloc:
            sets[r].add(m)
        out[d] = sets
    return out


def _milp_columns(
    prob: _Problem, active: Sequence[int], pool_free: IntArray, extra: Extra | None = None
) -> int:
    """How many x columns the MILP would have (to decide whether to build it at all)."""
    fleet = prob.fleet
    n = 0
    for d in active:
        ws = prob.states[d]
        for cand in _milp_candidates(prob, d, extra):
            for m in cand:
                n += sum(
                    1 for p in fleet.module_pools[m] if ws.eligible_pool[p] and pool_free[p] > 0
                )
    return n


def _solve_milp(
    prob: _Problem,
    active: Sequence[int],
    pool_free: IntArray,
    power_free_w: FloatArray,
    *,
    relax: bool = False,
    extra: Extra | None = None,
) -> _MilpResult | None:
    """Build and solve the MILP (or its LP relaxation, for a lower bound)."""
    fleet, s = prob.fleet, prob.fleet.settings
    cost: list[float] = []
    upper: list[float] = []
    integral: list[int] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []
    x_meta: list[tuple[int, int, int]] = []
    pool_rows: dict[int, list[tuple[int, float]]] = {}
    power_rows: dict[int, list[tuple[int, float]]] = {}

    def new_col(c: float, ub: float, integer: bool) -> int:
        cost.append(c)
        upper.append(ub)
        integral.append(1 if integer and not relax else 0)
        return len(cost) - 1

    def new_row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        r = len(row_lo)
        for col, v in entries:
            rows.append(r)
            cols.append(col)
            vals.append(v)
        row_lo.append(lo)
        row_hi.append(hi)

    offset = 0.0
    for d in active:
        ws = prob.states[d]
        g = max(1, ws.workload.gpus_per_replica)
        module_cols: dict[int, list[int]] = {}
        for r, cand in enumerate(_milp_candidates(prob, d, extra)):
            n_r = int(ws.demand[r])
            if n_r <= 0:
                continue
            entries: list[tuple[int, float]] = []
            for m in cand:
                for p in fleet.module_pools[m]:
                    if not ws.eligible_pool[p] or pool_free[p] < g:
                        continue
                    ub = min(n_r, int(pool_free[p]) // g)
                    col = new_col(float(prob.cost[d][r, m]), ub, True)
                    x_meta.append((col, d, r * fleet.n_pools + p))
                    entries.append((col, 1.0))
                    pool_rows.setdefault(p, []).append((col, float(g)))
                    w = g * float(fleet.pool_power_w[p]) * float(fleet.pue[m])
                    power_rows.setdefault(m, []).append((col, w))
                    module_cols.setdefault(m, []).append(col)
            u = new_col(s.unplaced_cost, n_r, False)
            new_row([*entries, (u, 1.0)], n_r, n_r)
        if ws.spread >= 2 and module_cols:
            ys: list[tuple[int, float]] = []
            for _m, xcols in sorted(module_cols.items()):
                y = new_col(0.0, 1.0, True)
                ys.append((y, 1.0))
                new_row([(y, 1.0)] + [(c, -1.0) for c in xcols], -np.inf, 0.0)
            short = new_col(s.spread_cost, ws.spread, False)
            new_row([*ys, (short, 1.0)], ws.spread, np.inf)
        elif ws.spread >= 1 and not module_cols:
            offset += s.spread_cost * ws.spread  # nothing can be placed: all of it is short
        elif ws.spread == 1:
            # One module short exactly when nothing is placed: short >= 1 - sum(x).
            short = new_col(s.spread_cost, 1.0, False)
            xs = [(c, 1.0) for cols in module_cols.values() for c in cols]
            new_row([*xs, (short, 1.0)], 1.0, np.inf)
    # Capacity rows only where the columns could together exceed them (others are redundant).
    for p, entries in sorted(pool_rows.items()):
        if sum(v * upper[col] for col, v in entries) > pool_free[p]:
            new_row(entries, -np.inf, float(pool_free[p]))
    for m, entries in sorted(power_rows.items()):
        if sum(v * upper[col] for col, v in entries) > power_free_w[m] + _EPS:
            new_row(entries, -np.inf, float(power_free_w[m]) + 1e-6)
    if not cost:
        return _MilpResult({d: ({}, {}) for d in active}, True, offset)
    a = sp.csr_array((vals, (rows, cols)), shape=(len(row_lo), len(cost)))
    options: dict[str, object] = {
        "time_limit": s.milp_time_limit_s,
        "mip_rel_gap": s.milp_rel_gap,
        "presolve": True,
        "disp": False,
    }
    if not relax:
        options["node_limit"] = s.milp_node_limit
    res = milp(
        c=np.array(cost),
        integrality=np.array(integral),
        bounds=Bounds(np.zeros(len(cost)), np.array(upper)),
        constraints=LinearConstraint(a, np.array(row_lo), np.array(row_hi)),
        options=options,
    )
    if res.x is None:
        return None
    bound = getattr(res, "mip_dual_bound", None)
    if relax:
        bound = float(res.fun)
    if bound is not None:
        bound = float(bound) + offset
    by_pool: dict[int, dict[tuple[int, int], int]] = {d: {} for d in active}
    for col, d, key in x_meta:
        k = round(float(res.x[col]))
        if k > 0:
            r, p = divmod(key, fleet.n_pools)
            by_pool[d][(r, p)] = by_pool[d].get((r, p), 0) + k
    sol = {d: _from_pools(fleet, by_pool[d]) for d in active}
    return _MilpResult(sol, res.status == 0, None if bound is None else float(bound))


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


def _solve(
    prob: _Problem,
    active: Sequence[int],
    pool_free: IntArray,
    power_free_w: FloatArray,
) -> tuple[dict[int, Solution], str, float | None, list[str]]:
    """Pick and run a solver for the active deployments on the given free capacity."""
    s = prob.fleet.settings
    notes: list[str] = []
    greedy = _Greedy(prob, active, pool_free.copy(), power_free_w.copy()).run()
    extra = _greedy_extra(greedy)
    columns = _milp_columns(prob, active, pool_free, extra)
    if s.milp_max_variables <= 0 or columns > s.milp_max_variables:
        notes.append(f"MILP skipped: {columns} columns > {s.milp_max_variables}; greedy solver")
        return greedy, "greedy", None, notes
    res = _solve_milp(prob, active, pool_free, power_free_w, extra=extra)
    if res is None or not _fits(prob, res.sol, pool_free, power_free_w):
        notes.append("MILP found no usable solution within its limits; greedy solver")
        return greedy, "milp->greedy", None, notes
    g_obj = sum(_objective(prob, d, greedy[d][0]) for d in active)
    m_obj = sum(_objective(prob, d, res.sol[d][0]) for d in active)
    if not res.optimal:
        notes.append("MILP stopped at its node/time limit")
    if g_obj < m_obj - _EPS:
        notes.append("greedy solution cheaper than the MILP's; greedy used")
        return greedy, "milp->greedy", res.bound, notes
    return res.sol, "milp", res.bound, notes


def lower_bound(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
) -> float:
    """The LP relaxation's optimum over every feasible (deployment, region, module): a true
    lower bound on the fleet-wide cost without hysteresis (to within the 1e-9 tie-break).

    It has a column per feasible pair, so it suits benchmarks of medium instances only.
    """
    fleet = modules if isinstance(modules, FleetState) else FleetState(modules, settings)
    pols = tuple(policies)
    states = [prepare(fleet, wl, pols) for wl in sorted(workloads, key=lambda w: w.key)]
    prob = _build_problem(fleet, states, candidates=None)
    res = _solve_milp(prob, range(len(states)), fleet.pool_free, fleet.power_free_w, relax=True)
    return float("nan") if res is None or res.bound is None else res.bound


def exact_cost(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
) -> float | None:
    """The optimal fleet-wide cost by MILP over every feasible candidate, without pruning or
    hysteresis (None if HiGHS does not prove optimality within the settings' limits).

    A reference for tests and benchmarks on small instances.
    """
    fleet = modules if isinstance(modules, FleetState) else FleetState(modules, settings)
    pols = tuple(policies)
    states = [prepare(fleet, wl, pols) for wl in sorted(workloads, key=lambda w: w.key)]
    prob = _build_problem(fleet, states, candidates=None)
    res = _solve_milp(prob, range(len(states)), fleet.pool_free, fleet.power_free_w)
    if res is None or not res.optimal:
        return None
    return sum(deployment_cost(fleet, states[d], res.sol[d][0]) for d in range(len(states)))


def place_fleet(
    workloads: Sequence[WorkloadView],
    modules: FleetState | Iterable[ModuleView],
    policies: Iterable[PolicyView] = (),
    *,
    settings: PlacementSettings | None = None,
    explain_all: bool | None = None,
) -> FleetDecision:
    """Re-solve every deployment together against shared capacity (fleet-wide mode)."""
    fleet = modules if isinstance(modules, FleetState) else FleetState(modules, settings)
    pols = tuple(policies)
    states = [prepare(fleet, wl, pols) for wl in sorted(workloads, key=lambda w: w.key)]
    if len({ws.key for ws in states}) != len(states):
        raise ValueError("deployment keys must be unique")
    prob = _build_problem(fleet, states)
    everyone = list(range(len(states)))
    sol, solver, bound, notes = _solve(prob, everyone, fleet.pool_free, fleet.power_free_w)

    # Stability: keep running placements the hysteresis rule protects, re-solve the rest.
    pool_free = fleet.pool_free.copy()
    power_free = fleet.power_free_w.copy()
    outcomes: dict[int, Outcome] = {}
    stability: dict[int, str] = {}
    for d, ws in enumerate(states):
        if not ws.workload.current:
            continue
        current, why_not = current_allocation(fleet, ws)
        new_alloc = sol[d][0]
        keep, text = hysteresis(fleet, ws, new_alloc, current, why_not)
        stability[d] = text
        if keep and current is not None:
            got, parts = take_pools(fleet, ws, current, pool_free, power_free)
            if sum(got.values()) == sum(current.values()):
                outcomes[d] = Outcome(got, parts, True, text)
                continue
            # It no longer fits next to the placements kept before it: give it back, re-solve.
            for _m, pp in parts.items():
                fleet.consume(pp, ws.workload.gpus_per_replica, pool_free, power_free, sign=-1)
            stability[d] = "replaced: the running placement no longer fits"
    if outcomes:
        rest = [d for d in everyone if d not in outcomes]
        sol, solver2, _, notes2 = _solve(prob, rest, pool_free, power_free)
        solver = solver if solver == solver2 else f"{solver}+{solver2}"
        notes += [f"after keeping {len(outcomes)} running placements: {n}" for n in notes2]
        bound = None  # the first bound ignored the kept placements
    for d in everyone:
        if d in outcomes:
            continue
        alloc, parts = sol.get(d, ({}, {}))
        g = states[d].workload.gpus_per_replica
        for pp in parts.values():
            fleet.consume(pp, g, pool_free, power_free)
        outcomes[d] = Outcome(alloc, parts, False, stability.get(d, ""))
    if not _within(pool_free, power_free, fleet.pool_free, fleet.power_free_w):  # a bug
        raise AssertionError("fleet-wide solution oversubscribes capacity")
    decisions = tuple(
        build_decision(fleet, ws, outcomes[d], full=explain_all) for d, ws in enumerate(states)
    )
    total = sum(deployment_cost(fleet, states[d], outcomes[d].alloc) for d in everyone)
    return FleetDecision(
        placements=decisions,
        modules=module_usage(fleet, pool_free),
        total_cost=total,
        solver=solver,
        lower_bound=bound,
        notes=tuple(notes),
    )
