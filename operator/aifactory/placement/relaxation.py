"""The fleet-wide program as a linear program: column generation and a Lagrangian lower bound.

The program (BRIEF "Placement semantics") for a set of deployments on shared capacity:

    minimise   sum c[q,m] x[q,p]  +  unplaced_cost * u[q]  +  (guaranteed - unplaced) * b[d]
               + spread_cost * short[d]
    subject to sum_p x[q,p] + u[q] = n[q]                  every demand row q = (deployment, region)
               sum g[q] x[q,p] <= free GPUs of pool p        every GPU pool
               sum g[q] * powerW[p] * pue[m] x[q,p] <= free power of module m
               sum_{q of d} u[q] - b[d] <= T[d] - G[d]        replicas below the guaranteed count G
               y[d,m] <= sum_{q of d, p of m} x[q,p],  y <= 1,  sum_m y[d,m] + short[d] >= k[d]
               (k = min(minModules, T); with k = 1 the y are dropped: sum x + short >= 1)

with x over every feasible (row, GPU pool) pair. At 1,000 modules and 5,000 deployments that is
about 5.6 million columns, too many to hand to HiGHS at once, so the LP is solved by column
generation (Dantzig-Wolfe pricing, e.g. Desrosiers & Luebbecke, "A Primer in Column Generation",
2005): start from the cheapest modules of every row, solve, price every feasible pair with the
LP's duals in one vectorised pass, add the most negative reduced costs, repeat.

Whatever the columns, the LP's capacity duals give a valid lower bound by Lagrangian relaxation
(Geoffrion, "Lagrangean relaxation for integer programming", 1974): relax the capacity rows
with multipliers lambda >= 0; what is left splits into one small problem per deployment over ALL
its feasible modules, whose minimum `_deployment_bounds` bounds from below (capacity, one
module per replica's region and the exact module choice for spread are relaxed further, which
only lowers it). So `lagrangian_bound` never exceeds the optimum of the integer program, even
when column generation stopped early; dropping constraints only lowers a minimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

# The HiGHS binding scipy ships (the `highspy` API): unlike `linprog`, a model kept between
# solves, so column generation adds columns to it and HiGHS restarts from the last optimal
# basis instead of solving from scratch every round. The `highspy` package prints a banner
# on stdout at its first model, which would corrupt `aifactoryctl place -o json`.
from scipy.optimize._highspy import _core as _highs  # type: ignore[attr-defined]

from aifactory.placement.framework import FloatArray, IntArray
from aifactory.placement.state import FleetState, WorkloadState

#: Reduced costs above this are not worth a column (the objective's unit is a replica's cost).
_RC_TOL = 1e-6
#: Deployments with more replicas than this get their bound in a Python loop, not the matrix.
_VECTOR_T = 64


@dataclass(slots=True)
class Shape:
    """A GPU shape (accepted pools, GPUs per replica) on the capacity of this solve."""

    g: int
    #: (modules, slots): usable pool ids per module (eligible, >= g GPUs free), -1 elsewhere.
    slots: IntArray


@dataclass(slots=True)
class Rows:
    """The demand rows of one solve: (deployment, region) pairs with replicas to place."""

    dep: IntArray  # position of the deployment in `deps`
    region: IntArray
    n: IntArray
    shape: IntArray
    #: (rows, modules): effective cost (brief cost, tie-break, minus stickiness); inf where the
    #: pair is infeasible now.
    cost: FloatArray
    #: Row range [start[i], start[i+1]) of each deployment in `deps`.
    start: IntArray


@dataclass(slots=True)
class LpResult:
    """One LP (or MILP) solve over the current columns."""

    objective: float
    #: Per column (same order as the columns), the solution value.
    x: FloatArray
    #: Capacity prices >= 0: per pool (GPU) and per module (watt).
    mu: FloatArray
    nu: FloatArray
    #: Duals of the demand rows and, per deployment, what a new module is worth for spread.
    pi: FloatArray
    spread_dual: FloatArray
    #: Per (deployment position, module): dual of the y <= sum x row (spread >= 2 only).
    link_dual: dict[tuple[int, int], float]
    #: False when a MILP stopped at a limit before proving optimality.
    optimal: bool = True


@dataclass(slots=True)
class Relaxation:
    """The program for `deps` (indices into `states`) on the given free capacity."""

    fleet: FleetState
    states: Sequence[WorkloadState]
    deps: list[int]
    pool_free: IntArray
    power_free_w: FloatArray
    #: Per deployment (same order as `states`): effective cost (rows x modules).
    costs: Sequence[FloatArray]
    rows: Rows = field(init=False)
    shapes: list[Shape] = field(init=False)
    #: Columns: demand row and GPU pool of each x.
    col_q: IntArray = field(init=False)
    col_p: IntArray = field(init=False)
    #: Module-level pairs present, as q * n + m (sorted unique).
    pairs: IntArray = field(init=False)
    #: The LP kept in HiGHS between column-generation rounds (built at the first solve).
    _lp: _LiveLp | None = field(init=False, default=None)
    _spread_exact: bool = field(init=False, default=False)
    _n_feasible: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        fleet = self.fleet
        n = fleet.n
        shape_ids: dict[tuple[object, ...], int] = {}
        self.shapes = []
        dep, region, demand, shape, cost_rows, start = [], [], [], [], [], [0]
        for i, d in enumerate(self.deps):
            ws = self.states[d]
            key = ws.shape
            sid = shape_ids.get(key)
            if sid is None:
                sid = shape_ids[key] = len(self.shapes)
                self.shapes.append(self._shape(ws))
            usable = self.shapes[sid].slots.max(axis=1) >= 0 if n else np.zeros(0, np.bool_)
            for r in range(len(ws.region_names)):
                if ws.demand[r] <= 0:
                    continue
                ok = ws.feasible[r] & usable
                cost_rows.append(np.where(ok, self.costs[d][r], np.inf))
                dep.append(i)
                region.append(r)
                demand.append(int(ws.demand[r]))
                shape.append(sid)
            start.append(len(dep))
        i64 = np.int64
        self.rows = Rows(
            dep=np.array(dep, i64),
            region=np.array(region, i64),
            n=np.array(demand, i64),
            shape=np.array(shape, i64),
            cost=np.vstack(cost_rows) if cost_rows else np.zeros((0, n)),
            start=np.array(start, i64),
        )
        self.col_q = np.zeros(0, i64)
        self.col_p = np.zeros(0, i64)
        self.pairs = np.zeros(0, i64)

    @property
    def exact_spread(self) -> bool:
        """Whether the LP models minModules >= 2 (a y and a link row per deployment and
        module). Above `lp_exact_spread_max_rows` demand rows it does not: those rows make
        HiGHS several times slower, and both bounds count spread without the LP (for any
        prices, see the module docstring), so only the LP's own objective gets weaker; the
        greedy repair restores spread after rounding."""
        return self._spread_exact or self.n_rows <= self.fleet.settings.lp_exact_spread_max_rows

    def _x_cap(self) -> FloatArray:
        """Per deployment position: the most replicas one column may hold. Without exact
        spread, a deployment asking for k >= 2 modules gets ceil(replicas / k) per column, so
        the LP still spreads it (a heuristic for the rounding; the bounds do not use it)."""
        cap = np.full(len(self.deps), np.inf)
        if self.exact_spread:
            return cap
        rows = self.rows
        for i, d in enumerate(self.deps):
            lo, hi = int(rows.start[i]), int(rows.start[i + 1])
            total = int(rows.n[lo:hi].sum())
            k = min(self.states[d].workload.min_modules, total)
            if k >= 2:
                cap[i] = float(math.ceil(total / k))
        return cap

    def _shape(self, ws: WorkloadState) -> Shape:
        fleet = self.fleet
        g = max(1, ws.workload.gpus_per_replica)
        slots = fleet.slot_pool.T.copy() if fleet.n_pools else np.full((fleet.n, 0), -1)
        pid = np.where(slots >= 0, slots, 0)
        ok = (slots >= 0) & ws.eligible_pool[pid] & (self.pool_free[pid] >= g)
        return Shape(g, np.where(ok, slots, -1))

    # columns ---------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Demand rows."""
        return len(self.rows.n)

    def cheapest(self, k: int) -> tuple[IntArray, IntArray]:
        """The k cheapest feasible modules of every row: (rows, modules)."""
        cost = self.rows.cost
        if cost.size == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        k = min(k, cost.shape[1])
        top = np.argpartition(cost, k - 1, axis=1)[:, :k] if k < cost.shape[1] else None
        if top is None:
            top = np.tile(np.arange(cost.shape[1]), (cost.shape[0], 1))
        q = np.repeat(np.arange(cost.shape[0]), top.shape[1])
        m = top.ravel()
        ok = np.isfinite(cost[q, m])
        return q[ok], m[ok]

    @property
    def complete(self) -> bool:
        """Whether every feasible (row, module) pair is a column already (small fleets: the
        K cheapest per row and the running modules are often all of them)."""
        if self._n_feasible < 0:
            self._n_feasible = int(np.isfinite(self.rows.cost).sum())
        return len(self.pairs) >= self._n_feasible

    def all_feasible(self) -> tuple[IntArray, IntArray]:
        """Every feasible (row, module) pair: the unpruned program."""
        q, m = np.nonzero(np.isfinite(self.rows.cost))
        return q.astype(np.int64), m.astype(np.int64)

    def add(self, q: IntArray, m: IntArray) -> int:
        """Add module-level pairs (one column per usable pool); returns the pairs added."""
        n = self.fleet.n
        key = np.unique(q * n + m)
        key = key[~np.isin(key, self.pairs, assume_unique=True)]
        if len(key) == 0:
            return 0
        self.pairs = np.union1d(self.pairs, key)
        q, m = key // n, key % n
        new_q: list[IntArray] = []
        new_p: list[IntArray] = []
        shapes = self.rows.shape[q]
        for sid, shape in enumerate(self.shapes):
            sel = shapes == sid
            if not sel.any():
                continue
            qq, mm = q[sel], m[sel]
            for s in range(shape.slots.shape[1]):
                p = shape.slots[mm, s]
                ok = p >= 0
                new_q.append(qq[ok])
                new_p.append(p[ok])
        if new_q:
            add_q, add_p = np.concatenate(new_q), np.concatenate(new_p)
            self.col_q = np.concatenate([self.col_q, add_q])
            self.col_p = np.concatenate([self.col_p, add_p])
            if self._lp is not None:
                self._extend_lp(self._lp, add_q, add_p)
        return len(key)

    # the program -----------------------------------------------------------------------------
    def _program(self, integral: bool) -> _Program:
        """Matrices of the program over the current columns (see the module docstring)."""
        fleet, rows, s = self.fleet, self.rows, self.fleet.settings
        q_n = rows.n
        nq = len(q_n)
        cq, cp = self.col_q, self.col_p
        nx = len(cq)
        cm = fleet.pool_module[cp] if nx else np.zeros(0, np.int64)
        g = np.array([self.shapes[sid].g for sid in rows.shape[cq]], np.float64) if nx else None
        gx = g if g is not None else np.zeros(0)
        cost: list[FloatArray] = [rows.cost[cq, cm], np.full(nq, s.unplaced_cost)]
        x_cap = self._x_cap()
        upper: list[FloatArray] = [x_cap[rows.dep[cq]], np.full(nq, np.inf)]
        integ: list[FloatArray] = [np.full(nx, 1.0 if integral else 0.0), np.zeros(nq)]
        ncol = nx + nq
        # Inequality rows as (row, col, value) triplets, rows numbered as they are created.
        ur: list[IntArray] = []
        uc: list[IntArray] = []
        uv: list[FloatArray] = []
        ub: list[float] = []
        n_ub = 0

        def add_rows(r: IntArray, c: IntArray, v: FloatArray, rhs: Sequence[float]) -> int:
            nonlocal n_ub
            ur.append(r + n_ub)
            uc.append(c)
            uv.append(v)
            ub.extend(rhs)
            first = n_ub
            n_ub += len(rhs)
            return first

        # Capacity: every pool and module (rows without a column yet cost HiGHS nothing, and
        # columns added later find their rows).
        pools = np.arange(fleet.n_pools)
        pool_row = np.full(fleet.n_pools, -1, np.int64)
        pool_row[pools] = np.arange(len(pools))
        first_pool = add_rows(
            pool_row[cp],
            np.arange(nx),
            gx,
            np.maximum(self.pool_free[pools], 0).astype(np.float64).tolist(),
        )
        mods = np.arange(fleet.n)
        mod_row = np.full(fleet.n, -1, np.int64)
        mod_row[mods] = np.arange(len(mods))
        watts = gx * fleet.pool_power_w[cp] * fleet.pue[cm] if nx else np.zeros(0)
        first_power = add_rows(
            mod_row[cm],
            np.arange(nx),
            watts,
            (np.maximum(self.power_free_w[mods], 0.0) + 1e-6).tolist(),
        )
        # Guaranteed replicas, spread: per deployment.
        col_dep = rows.dep[cq] if nx else np.zeros(0, np.int64)
        order = np.argsort(col_dep, kind="stable")
        bounds_dep = np.searchsorted(col_dep[order], np.arange(len(self.deps) + 1))
        spread_rows: dict[int, int] = {}
        link_rows: dict[tuple[int, int], int] = {}
        spread_k = np.zeros(len(self.deps), np.int64)
        extra_cost, extra_upper, extra_int = [], [], []
        # Small rows go to Python lists and become arrays once (np.append per row costs more
        # than the rest of the program on small fleets).
        sr: list[int] = []
        sc: list[int] = []
        sv: list[float] = []

        def add_small(cols: list[int], vals: list[float], rhs: float) -> int:
            nonlocal n_ub
            sr.extend([n_ub] * len(cols))
            sc.extend(cols)
            sv.extend(vals)
            ub.append(rhs)
            n_ub += 1
            return n_ub - 1

        for i, d in enumerate(self.deps):
            ws = self.states[d]
            lo_q, hi_q = int(rows.start[i]), int(rows.start[i + 1])
            if hi_q == lo_q:
                continue
            total = int(q_n[lo_q:hi_q].sum())
            guaranteed = min(ws.workload.min_replicas, total)
            if guaranteed > 0:
                b = ncol
                ncol += 1
                extra_cost.append(s.guaranteed_unplaced_cost - s.unplaced_cost)
                extra_upper.append(float(guaranteed))
                extra_int.append(0.0)
                us = list(range(lo_q + nx, hi_q + nx))
                add_small([*us, b], [1.0] * len(us) + [-1.0], float(total - guaranteed))
            k = min(ws.workload.min_modules, total)
            if k >= 2 and not self.exact_spread:
                k = 0
            if k <= 0:
                continue
            spread_k[i] = k
            mine = order[bounds_dep[i] : bounds_dep[i + 1]]
            short = ncol
            ncol += 1
            extra_cost.append(s.spread_cost)
            extra_upper.append(float(k))
            extra_int.append(0.0)
            if k == 1:
                cols = [*mine.tolist(), short]
                spread_rows[i] = add_small(cols, [-1.0] * len(cols), -1.0)
                continue
            ys: list[int] = []
            cm_mine = cm[mine]
            for m in np.unique(cm_mine).tolist():
                y = ncol
                ncol += 1
                ys.append(y)
                extra_cost.append(0.0)
                extra_upper.append(1.0)
                extra_int.append(1.0 if integral else 0.0)
                xs = mine[cm_mine == m].tolist()
                link_rows[(i, m)] = add_small([*xs, y], [-1.0] * len(xs) + [1.0], 0.0)
            spread_rows[i] = add_small([*ys, short], [-1.0] * (len(ys) + 1), -float(k))
        if sr:
            ur.append(np.array(sr, np.int64))
            uc.append(np.array(sc, np.int64))
            uv.append(np.array(sv, np.float64))
        cost.append(np.array(extra_cost, np.float64))
        upper.append(np.array(extra_upper, np.float64))
        integ.append(np.array(extra_int, np.float64))
        eq_r = np.concatenate([cq, np.arange(nq)]) + n_ub
        eq_c = np.arange(nx + nq)
        rows_all = np.concatenate([*ur, eq_r]) if ur else eq_r
        cols_all = np.concatenate([*uc, eq_c]) if uc else eq_c
        vals_all = np.concatenate([*uv, np.ones(nx + nq)]) if uv else np.ones(nx + nq)
        a = _csc(rows_all, cols_all, vals_all, n_ub + nq, ncol)
        return _Program(
            c=np.concatenate(cost),
            upper=np.concatenate(upper),
            integrality=np.concatenate(integ),
            a=a,
            b_ub=np.array(ub, np.float64),
            b_eq=q_n.astype(np.float64),
            nx=nx,
            pools=pools,
            first_pool=first_pool,
            mods=mods,
            first_power=first_power,
            spread_rows=spread_rows,
            link_rows=link_rows,
            spread_k=spread_k,
        )

    def solve_lp(self) -> LpResult | None:
        """The LP over the current columns, with its duals; None when HiGHS fails.

        The first call hands the program to HiGHS; later calls re-solve the same model with
        the columns `add` appended since, from the previous optimal basis (the new columns
        enter at zero, so that basis stays primal feasible and a few primal simplex
        iterations usually restore optimality).
        """
        if self._lp is None:
            prog = self._program(integral=False)
            if len(prog.c) == 0:
                return self._nothing()
            self._lp = self._build_lp(prog)
        live = self._lp
        prog = live.prog
        h = live.highs
        h.setOptionValue("time_limit", float(self.fleet.settings.lp_time_limit_s))
        h.run()
        if h.getModelStatus() != _highs.HighsModelStatus.kOptimal:
            return None
        sol = h.getSolution()
        value = np.asarray(sol.col_value, np.float64)
        dual = np.asarray(sol.row_dual, np.float64)
        mu = np.zeros(self.fleet.n_pools)
        mu[prog.pools] = np.maximum(0.0, -dual[prog.first_pool : prog.first_pool + len(prog.pools)])
        nu = np.zeros(self.fleet.n)
        nu[prog.mods] = np.maximum(0.0, -dual[prog.first_power : prog.first_power + len(prog.mods)])
        pi = dual[live.first_eq : live.first_eq + self.n_rows].copy()
        spread = np.zeros(len(self.deps))
        for i, r in prog.spread_rows.items():
            spread[i] = min(0.0, float(dual[r]))
        link = {key: min(0.0, float(dual[r])) for key, r in prog.link_rows.items()}
        objective = float(h.getInfo().objective_function_value)
        return LpResult(objective, value[live.x_col], mu, nu, pi, spread, link)

    def _build_lp(self, prog: _Program) -> _LiveLp:
        """A HiGHS model of `prog`: inequality rows first, then the demand rows."""
        h = _highs._Highs()
        h.setOptionValue("output_flag", False)
        # Primal-feasible warm starts after adding columns are what column generation needs;
        # dual simplex from scratch on the first solve is HiGHS's default choice either way.
        n_ub, nq = len(prog.b_ub), len(prog.b_eq)
        lower = np.concatenate([np.full(n_ub, -_highs.kHighsInf), prog.b_eq])
        upper = np.concatenate([prog.b_ub, prog.b_eq])
        empty_i = np.zeros(0, np.int32)
        h.addRows(n_ub + nq, lower, upper, 0, np.zeros(n_ub + nq, np.int32), empty_i, np.zeros(0))
        a = prog.a
        col_upper = np.where(np.isinf(prog.upper), _highs.kHighsInf, prog.upper)
        h.addCols(
            a.shape[1],
            prog.c.astype(np.float64),
            np.zeros(a.shape[1]),
            col_upper.astype(np.float64),
            a.nnz,
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
        )
        return _LiveLp(h, prog, np.arange(prog.nx, dtype=np.int64), n_ub)

    def _extend_lp(self, live: _LiveLp, cq: IntArray, cp: IntArray) -> None:
        """Append x columns for (row, pool) pairs to the HiGHS model: each enters its demand,
        pool and power rows and its deployment's spread (a new y and link row when it is the
        deployment's first column on that module and it asks for two modules or more)."""
        h, prog, fleet, rows = live.highs, live.prog, self.fleet, self.rows
        cm = fleet.pool_module[cp]
        dep = rows.dep[cq]
        g = np.array([self.shapes[sid].g for sid in rows.shape[cq]], np.float64)
        k = prog.spread_k[dep]
        # New (deployment, module) links for spread >= 2.
        fresh = sorted(
            {
                (int(i), int(m))
                for i, m in zip(dep[k >= 2].tolist(), cm[k >= 2].tolist(), strict=True)
                if (int(i), int(m)) not in prog.link_rows
            }
        )
        if fresh:
            n_col = int(h.getNumCol())
            n_row = int(h.getNumRow())
            n = len(fresh)
            spread_row = np.array([prog.spread_rows[i] for i, _ in fresh], np.int32)
            h.addCols(
                n,
                np.zeros(n),
                np.zeros(n),
                np.ones(n),
                n,
                np.arange(n, dtype=np.int32),
                spread_row,
                np.full(n, -1.0),
            )
            h.addRows(
                n,
                np.full(n, -_highs.kHighsInf),
                np.zeros(n),
                n,
                np.arange(n, dtype=np.int32),
                np.arange(n_col, n_col + n, dtype=np.int32),
                np.ones(n),
            )
            for j, key in enumerate(fresh):
                prog.link_rows[key] = n_row + j
        nx = len(cq)
        cols = np.arange(nx)
        watts = g * fleet.pool_power_w[cp] * fleet.pue[cm]
        ent_c = [cols, cols, cols]
        ent_r = [live.first_eq + cq, prog.first_pool + cp, prog.first_power + cm]
        ent_v = [np.ones(nx), g, watts]
        one = np.flatnonzero(k == 1)
        if len(one):
            ent_c.append(one)
            ent_r.append(np.array([prog.spread_rows[int(i)] for i in dep[one]], np.int64))
            ent_v.append(np.full(len(one), -1.0))
        two = np.flatnonzero(k >= 2)
        if len(two):
            ent_c.append(two)
            ent_r.append(
                np.array(
                    [prog.link_rows[(int(dep[j]), int(cm[j]))] for j in two.tolist()], np.int64
                )
            )
            ent_v.append(np.full(len(two), -1.0))
        n_rows_now = int(h.getNumRow())
        a = sp.csc_array(
            (np.concatenate(ent_v), (np.concatenate(ent_r), np.concatenate(ent_c))),
            shape=(n_rows_now, nx),
        )
        a.sort_indices()
        first = int(h.getNumCol())
        h.addCols(
            nx,
            rows.cost[cq, cm].astype(np.float64),
            np.zeros(nx),
            np.where(np.isinf(x_cap := self._x_cap()[dep]), _highs.kHighsInf, x_cap),
            a.nnz,
            a.indptr[:-1].astype(np.int32),
            a.indices.astype(np.int32),
            a.data.astype(np.float64),
        )
        live.x_col = np.concatenate([live.x_col, np.arange(first, first + nx, dtype=np.int64)])

    def solve_milp(self, *, time_limit: float | None, node_limit: int | None) -> LpResult | None:
        """The integer program over the current columns (no duals); None when nothing found."""
        prog = self._program(integral=True)
        if len(prog.c) == 0:
            return self._nothing()
        s = self.fleet.settings
        constraints = []
        if len(prog.b_ub):
            constraints.append(
                LinearConstraint(prog.a_ub, np.full(len(prog.b_ub), -np.inf), prog.b_ub)
            )
        if len(prog.b_eq):
            constraints.append(LinearConstraint(prog.a_eq, prog.b_eq, prog.b_eq))
        options: dict[str, object] = {"presolve": True, "disp": False}
        if time_limit is not None:
            options["time_limit"] = time_limit
            options["mip_rel_gap"] = s.milp_rel_gap
        else:
            options["mip_rel_gap"] = 0.0
        if node_limit is not None:
            options["node_limit"] = node_limit
        upper = np.where(np.isinf(prog.upper) & (prog.integrality > 0), 1e9, prog.upper)
        res = milp(
            c=prog.c,
            integrality=prog.integrality,
            bounds=Bounds(np.zeros(len(prog.c)), upper),
            constraints=constraints,
            options=options,
        )
        if res.x is None:
            return None
        empty = np.zeros(0)
        x = np.asarray(res.x[: prog.nx])
        return LpResult(float(res.fun), x, empty, empty, empty, empty, {}, res.status == 0)

    def _nothing(self) -> LpResult:
        """The empty program (no replicas to place): zero everything."""
        fleet = self.fleet
        return LpResult(
            0.0,
            np.zeros(0),
            np.zeros(fleet.n_pools),
            np.zeros(fleet.n),
            np.zeros(self.n_rows),
            np.zeros(len(self.deps)),
            {},
        )

    # pricing ---------------------------------------------------------------------------------
    def _prices(self, mu: FloatArray, nu: FloatArray, any_pool: bool = False) -> FloatArray:
        """(shapes, modules): the cheapest capacity price of one replica of each shape."""
        fleet = self.fleet
        out = np.full((len(self.shapes), fleet.n), np.inf)
        for sid, shape in enumerate(self.shapes):
            slots = shape.slots
            if slots.shape[1] == 0:
                continue
            pid = np.where(slots >= 0, slots, 0)
            price = shape.g * (mu[pid] + fleet.pool_power_w[pid] * fleet.pue[:, None] * nu[:, None])
            out[sid] = np.where(slots >= 0, price, np.inf).min(axis=1)
        return out

    def _reduced(self, mu: FloatArray, nu: FloatArray) -> FloatArray:
        """(rows, modules): effective cost plus capacity price (inf where infeasible)."""
        prices = self._prices(mu, nu)
        rows = self.rows
        out = np.empty_like(rows.cost)
        for sid in range(len(self.shapes)):
            sel = np.flatnonzero(rows.shape == sid)
            if len(sel):
                out[sel] = rows.cost[sel] + prices[sid][None, :]
        return out

    def price(self, lp: LpResult) -> tuple[IntArray, IntArray]:
        """New (row, module) pairs with negative reduced cost, the most negative first per row
        (at most `lp_columns_per_round` per row)."""
        rows, n = self.rows, self.fleet.n
        if rows.cost.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rc = self._reduced(lp.mu, lp.nu)
        rc -= lp.pi[:, None]
        rc -= self._discount(lp)
        if len(self.pairs):
            rc[self.pairs // n, self.pairs % n] = np.inf
        j = min(self.fleet.settings.lp_columns_per_round, n)
        if j <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if j < n:
            top = np.argpartition(rc, j - 1, axis=1)[:, :j]
        else:
            top = np.tile(np.arange(n), (len(rc), 1))
        q = np.repeat(np.arange(len(rc)), top.shape[1])
        m = top.ravel()
        neg = rc[q, m] < -_RC_TOL
        return q[neg], m[neg]

    def _discount(self, lp: LpResult) -> FloatArray:
        """(rows, modules): tau >= 0, what one replica on a module is worth to its deployment's
        spread: the dual of its y <= sum x row when the LP has one, else the spread row's dual
        (a module new to the deployment is worth one more distinct module)."""
        rows = self.rows
        out = np.repeat((-lp.spread_dual[rows.dep])[:, None], self.fleet.n, axis=1)
        for (i, mod), dual in lp.link_dual.items():
            lo, hi = int(rows.start[i]), int(rows.start[i + 1])
            out[lo:hi, mod] = -dual
        return np.maximum(out, 0.0)

    # the bounds --------------------------------------------------------------------------------
    def knapsack_bound(self, lp: LpResult) -> float:
        """A lower bound on the integer program's optimum over every feasible pair: the
        Lagrangian relaxation of the demand rows (multipliers pi, the LP's demand duals) and of
        the spread links (tau, `_discount`), which leaves one integer knapsack per module (its
        replicas within its free GPUs and power) and one small problem per deployment (which
        replicas stay unplaced, which modules count for spread). Stronger than the LP bound
        where capacity comes in lumps: power budgets and GPUs per replica round down
        (Martello & Toth, "Knapsack problems", 1990, ch. 7 for the assignment case).

        Valid for any pi and tau >= 0; each module's knapsack is relaxed to one GPU count (all
        its pools, limited by power at its most frugal pool), which can only overestimate what
        a module can take, so the bound only gets lower.
        """
        s, rows, fleet = self.fleet.settings, self.rows, self.fleet
        if len(rows.n) == 0:
            return 0.0
        pi = lp.pi
        tau = self._discount(lp)
        value = (pi[:, None] - rows.cost + tau).T  # (modules, rows); -inf where infeasible
        g_row = np.array([self.shapes[sid].g for sid in rows.shape], np.int64)
        free = np.maximum(self.pool_free, 0)
        gpus = np.bincount(fleet.pool_module, weights=free, minlength=fleet.n).astype(np.int64)
        watts = np.where(free > 0, fleet.pool_power_w * fleet.pue[fleet.pool_module], np.inf)
        frugal = np.full(fleet.n, np.inf)
        np.minimum.at(frugal, fleet.pool_module, watts)
        power = np.maximum(self.power_free_w, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            by_power = np.where(frugal > 0, np.floor((power + 1e-6) / frugal), np.inf)
        cap = np.minimum(gpus, np.where(np.isfinite(by_power), by_power, gpus)).astype(np.int64)
        modules = 0.0
        for m in range(fleet.n):
            if cap[m] <= 0:
                continue
            col = value[m]
            sel = np.flatnonzero(col > 0)
            if len(sel):
                modules += _knapsack(col[sel], g_row[sel], rows.n[sel], int(cap[m]))
        # Per deployment: unplaced replicas (with the guaranteed count) and spread.
        rest = 0.0
        for i, d in enumerate(self.deps):
            lo, hi = int(rows.start[i]), int(rows.start[i + 1])
            if hi == lo:
                continue
            n = rows.n[lo:hi]
            total = int(n.sum())
            wl = self.states[d].workload
            units = np.sort(np.repeat(s.unplaced_cost - pi[lo:hi], n))
            take = np.cumsum(units)
            below = np.arange(1, total + 1) > total - min(wl.min_replicas, total)
            extra = np.cumsum(np.where(below, s.guaranteed_unplaced_cost - s.unplaced_cost, 0.0))
            rest += min(0.0, float((take + extra).min()))
            k = min(wl.min_modules, total)
            if k > 0:
                feasible = np.isfinite(rows.cost[lo:hi]).any(axis=0)
                t = np.minimum(tau[lo:hi].max(axis=0)[feasible], s.spread_cost)
                t = np.sort(t)[:k]
                rest += float(t.sum()) + s.spread_cost * (k - len(t))
        total_pi = float(pi @ rows.n)
        return total_pi + rest - modules - 1e-9 * float(rows.n.sum())

    def lagrangian_bound(self, mu: FloatArray, nu: FloatArray) -> float:
        """A lower bound on the integer program's optimum over every feasible pair, for any
        capacity prices mu, nu >= 0 (GPU and watt prices; see the module docstring).

        Per deployment the bound solves, over its cheapest modules at these prices: how many
        replicas P to place and on how many distinct modules D; the capacity term
        lambda * (free capacity) is then subtracted. A replica's price is the cheapest pool of
        its module, so no real placement can pay less.
        """
        s = self.fleet.settings
        rows = self.rows
        mu = np.maximum(mu, 0.0)
        nu = np.maximum(nu, 0.0)
        capacity = float(mu @ np.maximum(self.pool_free, 0)) + float(
            nu @ np.maximum(self.power_free_w, 0.0)
        )
        cum = np.concatenate([[0], np.cumsum(rows.n)])
        totals = (cum[rows.start[1:]] - cum[rows.start[:-1]]).astype(np.int64)
        has_rows = rows.start[1:] > rows.start[:-1]
        if len(rows.n) == 0:
            return -capacity
        reduced = self._reduced(mu, nu)
        best = reduced.min(axis=1)
        finite = np.isfinite(best)
        # delta[d, m]: least extra cost of putting one replica of d on m instead of its best.
        excess = np.where(finite[:, None], reduced - np.where(finite, best, 0.0)[:, None], np.inf)
        starts = rows.start[:-1][has_rows]
        delta = np.minimum.reduceat(excess, starts, axis=0)
        wls = [self.states[d].workload for d in self.deps]
        guaranteed = np.minimum([w.min_replicas for w in wls], totals).astype(np.int64)
        spread = np.minimum([w.min_modules for w in wls], totals).astype(np.int64)
        idx = np.flatnonzero(has_rows)
        kmax = int(spread[idx].max()) if len(idx) else 0
        kmax = min(max(kmax, 1), self.fleet.n)
        if kmax < delta.shape[1]:
            delta = np.partition(delta, kmax - 1, axis=1)[:, :kmax]
        small = np.sort(delta, axis=1)
        total = 0.0
        for row, i in enumerate(idx.tolist()):
            lo, hi = int(rows.start[i]), int(rows.start[i + 1])
            total += _deployment_bound(
                best[lo:hi],
                rows.n[lo:hi],
                small[row],
                int(totals[i]),
                int(guaranteed[i]),
                int(spread[i]),
                s.unplaced_cost,
                s.guaranteed_unplaced_cost,
                s.spread_cost,
            )
        # Effective costs carry a tie-break of at most 1e-9 per replica: take it off.
        return total - capacity - 1e-9 * float(rows.n.sum())


def _deployment_bound(
    best: FloatArray,
    n: IntArray,
    delta: FloatArray,
    total: int,
    guaranteed: int,
    spread: int,
    unplaced: float,
    below_min: float,
    spread_cost: float,
) -> float:
    """min over P placed replicas and D distinct modules of: the P cheapest replica prices
    (each region's best module), the D smallest module premiums `delta`, the unplaced penalty
    and `spread_cost` per module short of `spread`."""
    units = np.sort(np.repeat(best, n))
    cum = np.concatenate([[0.0], np.cumsum(units)])  # inf once the finite units run out
    p = np.arange(total + 1)
    missing = total - p
    penalty = unplaced * missing + (below_min - unplaced) * np.maximum(0, guaranteed - p)
    finite = delta[np.isfinite(delta)]
    usable = len(finite)
    # f[j]: premiums of j distinct modules plus the spread shortfall; j = 0 only when P = 0.
    kcap = max(1, spread)
    f = np.full(kcap + 1, np.inf)
    f[0] = spread_cost * spread
    prem = np.concatenate([[0.0], np.cumsum(finite[:kcap])])
    for j in range(1, kcap + 1):
        if j <= usable:
            f[j] = prem[j] + spread_cost * max(0, spread - j)
    g = np.minimum.accumulate(f[1:]) if kcap >= 1 else np.zeros(0)
    choose = np.where(p == 0, f[0], g[np.clip(np.minimum(p, kcap), 1, kcap) - 1])
    with np.errstate(invalid="ignore"):
        value = cum + choose + penalty
    value = np.where(np.isnan(value), np.inf, value)
    out = float(value.min())
    return out if math.isfinite(out) else float(penalty[0] + spread_cost * spread)


def _knapsack(values: FloatArray, sizes: IntArray, counts: IntArray, capacity: int) -> float:
    """Most value from at most `counts[i]` copies of item i (size `sizes[i]` GPUs) within
    `capacity` GPUs. Exact when at most two sizes exceed 1 GPU (the sizes are enumerated, the
    1-GPU items fill the rest best first); otherwise the fractional (LP) knapsack, an upper
    bound."""
    classes = sorted(set(sizes.tolist()))
    prefix: dict[int, FloatArray] = {}
    for size in classes:
        sel = sizes == size
        order = np.argsort(-values[sel], kind="stable")
        v, c = values[sel][order], counts[sel][order]
        limit = capacity // size
        units = np.repeat(v, np.minimum(c, limit))[:limit]
        prefix[size] = np.concatenate([[0.0], np.cumsum(units)])
    big = [z for z in classes if z > 1]
    if len(big) > 2:
        dens = np.concatenate([np.repeat(values / sizes, sizes * counts)])
        dens = np.sort(dens)[::-1][:capacity]
        return float(dens.sum())
    ones = prefix.get(1, np.zeros(1))
    grids = [np.arange(len(prefix[z])) for z in big] or [np.zeros(1, np.int64)]
    mesh = np.meshgrid(*grids, indexing="ij")
    used = sum((z * k for z, k in zip(big, mesh, strict=False)), np.zeros_like(mesh[0]))
    val = sum((prefix[z][k] for z, k in zip(big, mesh, strict=False)), np.zeros(mesh[0].shape))
    left = capacity - used
    ok = left >= 0
    fill = ones[np.clip(np.minimum(left, len(ones) - 1), 0, None)]
    return float(np.where(ok, val + fill, -np.inf).max())


def _csc(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_rows: int, n_cols: int
) -> sp.csc_array:
    """A CSC matrix from (row, column, value) triplets without duplicates, built with one
    sort: scipy's COO -> CSR -> stack -> CSC path costs more than HiGHS's own solve on the
    simulator's small programs."""
    order = np.lexsort((rows, cols))
    indptr = np.zeros(n_cols + 1, np.int64)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=indptr[1:])
    return sp.csc_array((vals[order], rows[order], indptr), shape=(n_rows, n_cols))


@dataclass(slots=True)
class _Program:
    c: FloatArray
    upper: FloatArray
    integrality: FloatArray
    #: Inequality rows (len(b_ub)) then demand rows (len(b_eq)), in CSC.
    a: sp.csc_array
    b_ub: FloatArray
    b_eq: FloatArray
    nx: int
    pools: IntArray
    first_pool: int
    mods: IntArray
    first_power: int
    spread_rows: dict[int, int]
    link_rows: dict[tuple[int, int], int]
    #: Per deployment position: the distinct modules its spread row asks for (0: none).
    spread_k: IntArray

    @property
    def a_ub(self) -> sp.csr_array:
        """The inequality rows (capacity, power, guaranteed, spread) as CSR."""
        return sp.csr_array(self.a.tocsr()[: len(self.b_ub)])

    @property
    def a_eq(self) -> sp.csr_array:
        """The demand rows as CSR."""
        return sp.csr_array(self.a.tocsr()[len(self.b_ub) :])


@dataclass(slots=True)
class _LiveLp:
    """The LP relaxation held in HiGHS between column-generation rounds."""

    highs: Any
    prog: _Program
    #: HiGHS column of each of the relaxation's columns (`col_q` order).
    x_col: IntArray
    #: Index of the first demand (equality) row.
    first_eq: int
