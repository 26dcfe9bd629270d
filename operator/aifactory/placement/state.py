"""Per-cycle precomputation, done once and shared by every plugin and solver.

`FleetState` turns the module views into column arrays once per cycle (thousands of deployments
then reuse it), with caches for answers that depend only on a policy, a selector or a region's
location. `WorkloadState` holds what one deployment's filters, scores and solvers share: its
bound policies, demand arrays, RTT matrix, eligible GPU pools and replica capacity per module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from aifactory.placement.binding import Binding
from aifactory.placement.framework import BoolArray, FloatArray, IntArray, RegionVerdicts, Verdicts
from aifactory.placement.geo import rtt_ms_row, unit_vectors
from aifactory.placement.model import (
    SOURCE_TYPES,
    ModuleView,
    PlacementSettings,
    PolicyView,
    Selector,
    WorkloadView,
)
from aifactory.placement.rtt import RttTable

_EPS_W = 1e-6
#: Up to this many GPU pools, `capacity` runs in Python floats (numpy's per-call overhead is
#: most of the work on the simulator's small fleets).
_SMALL_POOLS = 64


def source_bits(sources: Iterable[str]) -> int:
    """Energy source types as a bit set, so "all sources allowed" is one vector operation."""
    bits = 0
    for s in sources:
        if s in SOURCE_TYPES:
            bits |= 1 << SOURCE_TYPES.index(s)
        else:  # an unknown type must never pass an allow-list by accident
            bits |= 1 << len(SOURCE_TYPES)
    return bits


class FleetState:
    """Column arrays of the fleet, sorted by module name, plus per-cycle caches.

    Capacity here is what is free before this call places anything; solvers copy `pool_free`
    and `power_free_w` and consume their copies. `rtt`, when given, holds measured RTTs by
    (demand region name, module name) that replace the model for the pairs it covers.
    """

    def __init__(
        self,
        modules: Iterable[ModuleView],
        settings: PlacementSettings | None = None,
        *,
        rtt: RttTable | None = None,
    ) -> None:
        self.settings = settings or PlacementSettings()
        mods = tuple(sorted(modules, key=lambda m: m.name))
        names = tuple(m.name for m in mods)
        if len(set(names)) != len(names):
            raise ValueError("module names must be unique")
        self.modules = mods
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.n = n = len(mods)
        f64, i64 = np.float64, np.int64
        self.latitude = np.array([m.latitude for m in mods], f64)
        self.longitude = np.array([m.longitude for m in mods], f64)
        self.ready = np.array([m.ready for m in mods], np.bool_)
        self.schedulable = np.array([m.schedulable for m in mods], np.bool_)
        self.draining = np.array([m.draining for m in mods], np.bool_)
        self.pue = np.array([m.pue for m in mods], f64)
        self.carbon = np.array([m.carbon_intensity for m in mods], f64)
        self.renewable = np.array([m.renewable_share for m in mods], f64)
        self.reliability = np.array([m.ready_fraction for m in mods], f64)
        self.source_bits = np.array([source_bits(m.sources) for m in mods], i64)
        self.air_gapped = np.array([m.air_gapped for m in mods], np.bool_)
        self.countries: dict[str, int] = {}
        self.country = np.array([self._country_id(m.country) for m in mods], i64)
        self.operator_country = np.array(
            [self._country_id(m.operator_country) if m.operator_country else -1 for m in mods],
            i64,
        )
        # Which modules answer to each jurisdiction tag / certification; masks made on demand.
        self._tag_members: dict[str, list[int]] = {}
        self._cert_members: dict[str, list[int]] = {}
        for i, m in enumerate(mods):
            for t in m.jurisdictions:
                self._tag_members.setdefault(t, []).append(i)
            for c in m.certifications:
                self._cert_members.setdefault(c, []).append(i)

        # GPU pools, flattened and ordered within each module by board power then declaration,
        # so filling "slot 0 first" packs the most replicas under a power budget.
        self.models: dict[str, int] = {}
        rows: list[tuple[int, int, int, float, int, int, float]] = []
        for i, m in enumerate(mods):
            order = sorted(range(len(m.pools)), key=lambda k: (m.pools[k].power_w, k))
            for k in order:
                p = m.pools[k]
                mid = self.models.setdefault(p.model, len(self.models))
                rows.append((i, k, mid, p.memory_gib, p.count, p.free, p.power_w))
        self.n_pools = len(rows)
        self.pool_module = np.array([r[0] for r in rows], i64)
        self.pool_orig = np.array([r[1] for r in rows], i64)
        self.pool_model = np.array([r[2] for r in rows], i64)
        self.pool_memory = np.array([r[3] for r in rows], f64)
        self.pool_count = np.array([r[4] for r in rows], i64)
        self.pool_free = np.array([r[5] for r in rows], i64)
        self.pool_power_w = np.array([r[6] for r in rows], f64)
        #: GPU model name of each pool.
        self.pool_model_name: list[str] = [mods[r[0]].pools[r[1]].model for r in rows]
        # Python copies for the per-pool loops (fit_pools, consume): indexing a numpy array
        # for one scalar costs more than the arithmetic on it.
        self._pool_module_l: list[int] = [r[0] for r in rows]
        self._pool_power_l: list[float] = self.pool_power_w.tolist()
        self._pue_l: list[float] = self.pue.tolist()
        slots = max((len(m.pools) for m in mods), default=0)
        self.slot_pool = np.full((slots, n), -1, i64)
        self.module_pools: list[list[int]] = [[] for _ in range(n)]
        for pool, i in enumerate(self.pool_module.tolist()):
            self.slot_pool[len(self.module_pools[i]), i] = pool
            self.module_pools[i].append(pool)
        self.gpus_total = np.bincount(
            self.pool_module, weights=self.pool_count, minlength=n
        ).astype(i64)
        used_w = np.bincount(
            self.pool_module,
            weights=(self.pool_count - self.pool_free) * self.pool_power_w,
            minlength=n,
        )
        self.power_budget_w = np.array([m.power_budget_kw * 1000.0 for m in mods], f64)
        self.power_free_w = self.power_budget_w - used_w * self.pue

        self._selector_cache: dict[Selector, BoolArray] = {}
        self._rtt_cache: dict[tuple[float, float], FloatArray] = {}
        #: Per-cycle answers shared across deployments: filter verdicts, policy masks, GPU
        #: shapes. Keys start with the name of whoever stores them.
        self.cache: dict[object, object] = {}
        self._units = unit_vectors(self.latitude, self.longitude)
        self.rtt_table = rtt
        #: Region name -> (module indices, measured ms) for the pairs the table covers.
        self._measured: dict[str, tuple[IntArray, FloatArray]] = {}
        if rtt is not None:
            by_region: dict[str, list[tuple[int, float]]] = {}
            for (region, module), ms in rtt.pairs.items():
                col = self.index.get(module)
                if col is not None:
                    by_region.setdefault(region, []).append((col, ms))
            for region, hits in by_region.items():
                hits.sort()
                self._measured[region] = (
                    np.array([c for c, _ in hits], i64),
                    np.array([ms for _, ms in hits], f64),
                )

    def _country_id(self, code: str | None) -> int:
        if code is None:
            return -1
        return self.countries.setdefault(code, len(self.countries))

    def tag_mask(self, token: str) -> BoolArray:
        """Modules that answer to a jurisdiction token (country, group or extra tag)."""
        out = np.zeros(self.n, np.bool_)
        out[self._tag_members.get(token, [])] = True
        return out

    def cert_mask(self, cert: str) -> BoolArray:
        """Modules holding a certification."""
        out = np.zeros(self.n, np.bool_)
        out[self._cert_members.get(cert, [])] = True
        return out

    def country_mask(self, codes: Iterable[str]) -> BoolArray:
        """Modules located in one of `codes` (country codes only)."""
        ids = [self.countries[c] for c in codes if c in self.countries]
        return np.isin(self.country, ids)

    def selector_mask(self, selector: Selector) -> BoolArray:
        """Modules whose labels match `selector`; cached because many deployments share one."""
        hit = self._selector_cache.get(selector)
        if hit is None:
            hit = np.array([selector.matches(m.labels) for m in self.modules], np.bool_)
            self._selector_cache[selector] = hit
        return hit

    def rtt_row(self, latitude: float, longitude: float) -> FloatArray:
        """RTT from one demand location to every module; cached per location."""
        key = (latitude, longitude)
        hit = self._rtt_cache.get(key)
        if hit is None:
            hit = rtt_ms_row(latitude, longitude, self._units, self.settings)
            self._rtt_cache[key] = hit
        return hit

    def region_rtt(
        self, region: str, latitude: float, longitude: float
    ) -> tuple[FloatArray, BoolArray | None]:
        """RTT from one demand region to every module, and which entries were measured.

        Measured where the fleet's RTT table covers (region, module), else the model of
        `rtt_row`; the mask is None when no entry of the row was measured.
        """
        row = self.rtt_row(latitude, longitude)
        hit = self._measured.get(region)
        if hit is None:
            return row, None
        idx, ms = hit
        out = row.copy()
        out[idx] = ms
        mask = np.zeros(self.n, np.bool_)
        mask[idx] = True
        return out, mask

    def capacity(
        self,
        eligible_pool: BoolArray,
        gpus_per_replica: int,
        pool_free: IntArray,
        power_free_w: FloatArray,
        modules: IntArray | None = None,
    ) -> tuple[IntArray, IntArray]:
        """Replicas of one shape that fit per module: (by GPUs and power, by GPUs alone).

        Pools are filled lowest board power first, which maximises the count under a budget.
        With `modules`, only those are computed (the rest read 0): solvers ask only about the
        modules a deployment may use at all.
        """
        g = max(1, gpus_per_replica)
        cap = np.zeros(self.n, np.int64)
        gpu_cap = np.zeros(self.n, np.int64)
        if self.n_pools == 0:
            return cap, gpu_cap
        if self.n_pools <= _SMALL_POOLS:
            self._capacity_small(eligible_pool, g, pool_free, power_free_w, modules, cap, gpu_cap)
            return cap, gpu_cap
        idx = np.arange(self.n) if modules is None else modules
        per_pool = np.where(eligible_pool, pool_free // g, 0)
        sub_gpu = np.zeros(len(idx), np.int64)
        sub_cap = np.zeros(len(idx), np.int64)
        rem = power_free_w[idx].astype(np.float64)
        pue = self.pue[idx]
        for s in range(self.slot_pool.shape[0]):
            p = self.slot_pool[s, idx]
            valid = p >= 0
            pp = np.where(valid, p, 0)
            n_s = np.where(valid, per_pool[pp], 0)
            sub_gpu += n_s
            need = g * self.pool_power_w[pp] * pue
            with np.errstate(divide="ignore", invalid="ignore"):
                fit = np.where(need > 0, np.floor((rem + _EPS_W) / need), np.inf)
            fit = np.maximum(fit, 0)
            n_s = np.minimum(n_s, fit).astype(np.int64)
            rem = rem - n_s * np.where(need > 0, need, 0.0)
            sub_cap += n_s
        cap[idx] = sub_cap
        gpu_cap[idx] = sub_gpu
        return cap, gpu_cap

    def _capacity_small(
        self,
        eligible_pool: BoolArray,
        g: int,
        pool_free: IntArray,
        power_free_w: FloatArray,
        modules: IntArray | None,
        cap: IntArray,
        gpu_cap: IntArray,
    ) -> None:
        """`capacity` in Python floats for small fleets, where numpy's per-call overhead is
        most of the work: the same operations in the same order, so the same answers."""
        free = pool_free.tolist()
        ok = eligible_pool.tolist()
        watts = power_free_w.tolist()
        power, pues, pools = self._pool_power_l, self._pue_l, self.module_pools
        for i in range(self.n) if modules is None else modules.tolist():
            rem = watts[i]
            pue = pues[i]
            n_cap = n_gpu = 0
            for p in pools[i]:
                n_s = free[p] // g if ok[p] else 0
                n_gpu += n_s
                need = g * power[p] * pue
                if need > 0:
                    n_s = min(n_s, max(math.floor((rem + _EPS_W) / need), 0))
                    rem = rem - n_s * need
                n_cap += n_s
            cap[i] = n_cap
            gpu_cap[i] = n_gpu

    def fit_pools(
        self,
        module: int,
        eligible_pool: BoolArray,
        gpus_per_replica: int,
        pool_free: IntArray,
        power_free_w: FloatArray,
        replicas: int,
        prefer: Mapping[str, int] | None = None,
    ) -> list[tuple[int, int]]:
        """Split `replicas` on one module over its pools, lowest power first: [(pool, n)].

        `prefer` (GPU model -> replicas) puts those pools first, up to those counts: replicas
        that already run somewhere stay accounted where they run.
        Returns fewer than asked for when they do not fit; the caller decides what that means.
        """
        g = max(1, gpus_per_replica)
        rem_w = float(power_free_w[module])
        pue = self._pue_l[module]
        power = self._pool_power_l
        out: list[tuple[int, int]] = []
        left = replicas
        order = self.module_pools[module]
        taken: dict[int, int] = {}
        if prefer:
            names = self.pool_model_name
            for p in order:
                k = min(prefer.get(names[p], 0), left)
                if k > 0 and eligible_pool[p]:
                    n = min(k, int(pool_free[p]) // g)
                    need = g * power[p] * pue
                    if need > 0:
                        n = min(n, max(0, math.floor((rem_w + _EPS_W) / need)))
                    if n > 0:
                        out.append((p, n))
                        taken[p] = n * g  # not free any more for the second pass
                        rem_w -= n * need
                        left -= n
            if not left:
                return out
        for p in order:
            if left <= 0:
                break
            if not eligible_pool[p]:
                continue
            need = g * power[p] * pue
            n = (int(pool_free[p]) - taken.get(p, 0)) // g
            if need > 0:
                n = min(n, max(0, math.floor((rem_w + _EPS_W) / need)))
            n = min(n, left)
            if n > 0:
                out.append((p, n))
                rem_w -= n * need
                left -= n
        if not taken:
            return out  # one entry per pool already
        merged: dict[int, int] = {}
        for p, n in out:
            merged[p] = merged.get(p, 0) + n
        return list(merged.items())

    def consume(
        self,
        parts: list[tuple[int, int]],
        gpus_per_replica: int,
        pool_free: IntArray,
        power_free_w: FloatArray,
        sign: int = 1,
    ) -> None:
        """Take (sign=1) or give back (sign=-1) the GPUs and power of placed replicas."""
        g = max(1, gpus_per_replica)
        for p, n in parts:
            m = self._pool_module_l[p]
            pool_free[p] -= sign * n * g
            power_free_w[m] -= sign * n * g * self._pool_power_l[p] * self._pue_l[m]


@dataclass(slots=True)
class WorkloadState:
    """What one deployment's plugins and solvers share within a cycle.

    Rows are demand regions. A deployment without demand regions gets one row named "" with
    no location: its replicas serve no region and carry the carbon term only.
    """

    workload: WorkloadView
    binding: Binding
    region_names: tuple[str, ...]
    region_countries: tuple[str | None, ...]
    demand: IntArray
    has_demand: bool
    rtt: FloatArray | None
    eligible_pool: BoolArray
    capacity: IntArray
    gpu_capacity: IntArray
    #: True when capacity was computed on the fleet's own free arrays (answers are shareable).
    initial_capacity: bool = True
    #: (regions x modules): True where `rtt` is a measured value, not the model (None: none is).
    rtt_measured: BoolArray | None = None
    module_verdicts: list[Verdicts] = field(default_factory=list)
    #: The cache keys of all module verdicts when every one came from the fleet's cache
    #: (deployments with the same key share the module-level explanation counts).
    verdicts_key: tuple[object, ...] | None = None
    region_verdicts: list[RegionVerdicts] = field(default_factory=list)
    module_ok: BoolArray = field(default_factory=lambda: np.zeros(0, np.bool_))
    #: Hard rules that hold whatever the capacity (model, jurisdiction, latency...).
    static_ok: BoolArray = field(default_factory=lambda: np.zeros((0, 0), np.bool_))
    #: static_ok and capacity / readiness now: where a replica may go in this cycle.
    feasible: BoolArray = field(default_factory=lambda: np.zeros((0, 0), np.bool_))
    #: Modules that may take a replica for at least one region.
    feasible_any: BoolArray = field(default_factory=lambda: np.zeros(0, np.bool_))
    cost: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    latency_cost: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    carbon_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: Per module; all zero unless objective.reliabilityWeight is set.
    reliability_cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    # `total` memoised: solvers ask it tens of thousands of times per fleet solve. Not an init
    # field, so `replace(demand=...)` starts the copy afresh.
    _total: int = field(default=-1, init=False, repr=False, compare=False)

    def replace(self, **changes: Any) -> WorkloadState:
        """`dataclasses.replace` without its per-call field introspection (the simulator makes
        ~100,000 such copies a year); `total` is recomputed on the copy.

        Raises TypeError for a name that is not a field.
        """
        out: WorkloadState = _replace_state(self, changes)
        return out

    @property
    def key(self) -> str:
        """The deployment's "namespace/name"."""
        return self.workload.key

    @property
    def shape(self) -> tuple[frozenset[str], float, int]:
        """What GPU eligibility depends on: accepted models, memory, GPUs per replica."""
        wl = self.workload
        return (wl.gpu_models, wl.min_gpu_memory_gib, wl.gpus_per_replica)

    @property
    def total(self) -> int:
        """Replicas to place."""
        if self._total < 0:
            self._total = int(self.demand.sum())
        return self._total

    @property
    def guaranteed(self) -> int:
        """Replicas below which an unplaced one costs `guaranteed_unplaced_cost`."""
        return min(self.workload.min_replicas, self.total)

    @property
    def spread(self) -> int:
        """Distinct modules required: min(minModules, total); 0 when minModules is unset."""
        return min(self.workload.min_modules, self.total)


def _replacer(
    cls: type, names: Sequence[str], fresh: Mapping[str, int]
) -> Callable[[Any, dict[str, Any]], Any]:
    """A copy function for a slots class: the listed fields copied or changed, the `fresh`
    ones set to their start value; one statement per field, generated once, so a copy costs
    attribute reads and writes and nothing else."""
    body = ["def replace(self, changes):", "    out = new(cls)"]
    for name in names:  # names come from dataclasses.fields, never from input
        body.append(
            f"    out.{name} = changes.pop({name!r}) if {name!r} in changes else self.{name}"
        )
    body += [f"    out.{name} = {value!r}" for name, value in fresh.items()]
    body += [
        "    if changes:",
        "        raise TypeError(f'{cls.__name__} has no field {sorted(changes)[0]!r}')",
        "    return out",
    ]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec("\n".join(body), scope)
    fn: Callable[[Any, dict[str, Any]], Any] = scope["replace"]
    return fn


# `_total` is not an init field: a copy recomputes it on demand
_replace_state = _replacer(
    WorkloadState, [f.name for f in fields(WorkloadState) if f.init], {"_total": -1}
)


def enforce_policies(ws: WorkloadState) -> tuple[PolicyView, ...]:
    """The bound policies that filter (Audit policies only report)."""
    return ws.binding.enforce
