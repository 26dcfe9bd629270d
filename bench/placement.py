"""Benchmark of the placement engine against naive baselines measured in the same run.

    python bench/placement.py            # full sizes, writes docs/benchmarks.md
    python bench/placement.py --quick    # smaller fleet-wide instance, for a quick look

1. One deployment on 1,000 and 10,000 modules: `place_one` (vectorised filters and scores
   over a per-cycle FleetState) beside a pure-Python loop that checks and scores one module at
   a time, then fills the cheapest modules. Median over many deployments; cost ratio per
   deployment.
2. Fleet-wide: 5,000 deployments on 1,000 modules with `place_fleet`, beside per-deployment
   sequential placement (the engine's incremental mode, deployment after deployment) and the
   pure-Python loop applied sequentially.
3. Solution quality on a medium instance where the MILP path runs, against the LP lower bound.
4. Scale (`--scale`, or `--only-scale` for this section alone): roomy and congested (twice the
   GPUs asked that are free, `synthetic.congest`) fleets of 200 modules x 1,000 deployments
   beside an exact solve of the unpruned program (HiGHS, no time limit) in the same run, and
   of 1,000 modules x 5,000 deployments beside the LP bound (column generation to convergence).

Timing assertions belong here, never in tests.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy

from aifactory.api.jurisdictions import GROUPS, expand
from aifactory.placement import (
    FleetState,
    ModuleView,
    PlacementSettings,
    PolicyView,
    RegionDemand,
    WorkloadView,
    bind,
    lower_bound,
    place_fleet,
    place_one,
    place_sequential,
)
from aifactory.placement.cycle import prepare
from aifactory.placement.geo import rtt_ms
from aifactory.placement.model import unplaced_penalty
from aifactory.placement.optimize import exact_cost
from aifactory.placement.synthetic import (
    WorkloadMix,
    congest,
    random_fleet,
    random_workloads,
    standard_policies,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hack.benchdoc import write_section  # noqa: E402

#: Realistic load for the fleet-wide runs: about two thirds of the free GPUs are asked for.
MIX = WorkloadMix(max_region_replicas=2, gpus_per_replica=(1, 1, 1, 2), max_fixed_replicas=4)


# --------------------------------------------------------------------------------------------
# The naive baseline: what one would write without the engine, one module at a time.


def _tags(m: ModuleView) -> set[str]:
    return (
        {m.country}
        | {g for g, members in GROUPS.items() if m.country in members}
        | set(m.jurisdictions)
    )


def _allowed(m: ModuleView, wl: WorkloadView, enforce: Sequence[PolicyView]) -> bool:
    if not (m.ready and m.schedulable):
        return False
    if wl.placement_modules and m.name not in wl.placement_modules:
        return False
    if wl.module_selector is not None and not wl.module_selector.matches(m.labels):
        return False
    if wl.min_renewable_share is not None and m.renewable_share < wl.min_renewable_share:
        return False
    if wl.max_carbon_intensity is not None and m.carbon_intensity > wl.max_carbon_intensity:
        return False
    if wl.allowed_sources and not m.sources <= wl.allowed_sources:
        return False
    tags = _tags(m)
    for p in enforce:
        if p.allowed_jurisdictions and not tags & set(p.allowed_jurisdictions):
            return False
        if m.country in expand(p.denied_countries):
            return False
        if p.operator_countries and m.operator_country not in expand(p.operator_countries):
            return False
        if m.operator_country and m.operator_country in expand(p.denied_operator_countries):
            return False
        if not set(p.required_certifications) <= m.certifications:
            return False
        if p.require_air_gapped and not m.air_gapped:
            return False
    return True


def _resident(m: ModuleView, country: str | None, enforce: Sequence[PolicyView]) -> bool:
    for p in enforce:
        if p.data_residency != "SameJurisdictionAsDemand":
            continue
        if country is None:
            return False
        if m.country != country and not any(
            g in GROUPS and country in GROUPS[g] and g in _tags(m) for g in p.allowed_jurisdictions
        ):
            return False
    return True


class NaiveFleet:
    """Free GPUs and power per module, updated as the naive placer takes them."""

    def __init__(self, modules: Sequence[ModuleView]) -> None:
        self.modules = sorted(modules, key=lambda m: m.name)
        self.free = {(m.name, p.model): p.free for m in self.modules for p in m.pools}
        self.power = {
            m.name: m.power_budget_kw * 1000 - sum(p.allocated * p.power_w for p in m.pools) * m.pue
            for m in self.modules
        }

    def room(self, m: ModuleView, wl: WorkloadView) -> list[tuple[str, int]]:
        """Replicas that fit per accepted pool, lowest power first."""
        out = []
        watts = self.power[m.name]
        for p in sorted(m.pools, key=lambda p: p.power_w):
            if wl.gpu_models and p.model not in wl.gpu_models:
                continue
            if p.memory_gib < wl.min_gpu_memory_gib or p.count < wl.gpus_per_replica:
                continue
            n = self.free[(m.name, p.model)] // wl.gpus_per_replica
            need = wl.gpus_per_replica * p.power_w * m.pue
            if need > 0:
                n = min(n, max(0, math.floor((watts + 1e-6) / need)))
            if n > 0:
                out.append((p.model, n))
                watts -= n * need
        return out

    def take(self, m: ModuleView, wl: WorkloadView, k: int) -> int:
        got = 0
        if k <= 0:
            return 0
        for model, n in self.room(m, wl):
            t = min(n, k - got)
            pool = next(p for p in m.pools if p.model == model)
            self.free[(m.name, model)] -= t * wl.gpus_per_replica
            self.power[m.name] -= t * wl.gpus_per_replica * pool.power_w * m.pue
            got += t
            if got == k:
                break
        return got


def naive_place(
    wl: WorkloadView,
    fleet: NaiveFleet,
    policies: Sequence[PolicyView],
    settings: PlacementSettings,
) -> float:
    """Check and score every module in a Python loop, fill cheapest first; returns the cost."""
    enforce = bind(wl, policies).enforce
    limit = wl.max_latency_ms or settings.latency_normaliser_ms
    regions: list[tuple[str, int, RegionDemand | None]] = [
        (r.name, r.replicas, r) for r in wl.regions
    ] or [("", wl.replicas, None)]
    options: dict[str, list[tuple[float, str, ModuleView]]] = {}
    for m in fleet.modules:
        if not _allowed(m, wl, enforce) or not fleet.room(m, wl):
            continue
        carbon = wl.carbon_weight * m.carbon_intensity * m.pue / settings.carbon_normaliser
        for name, _, r in regions:
            cost = carbon
            if r is not None:
                rtt = rtt_ms(r.latitude, r.longitude, m.latitude, m.longitude, settings)
                if wl.max_latency_ms is not None and rtt > wl.max_latency_ms:
                    continue
                if not _resident(m, r.country, enforce):
                    continue
                cost += wl.latency_weight * rtt / limit
            options.setdefault(name, []).append((cost, m.name, m))
    total = 0.0
    placed = 0
    used: dict[str, int] = {}
    # minModules the obvious way: no module takes more than its even share.
    spread = min(wl.min_modules, wl.replicas)
    share = max(1, wl.replicas // spread) if spread > 1 else wl.replicas
    for name, n, _ in regions:
        left = n
        ranked = sorted(options.get(name, []), key=lambda o: (o[0], o[1]))
        for cap in (share, wl.replicas):  # even shares first, then whatever room is left
            for cost, mname, m in ranked:
                if left == 0:
                    break
                got = fleet.take(m, wl, min(left, cap - used.get(mname, 0)))
                if got:
                    used[mname] = used.get(mname, 0) + got
                    total += got * cost
                    left -= got
                    placed += got
    total += unplaced_penalty(settings, wl.replicas, wl.guaranteed, placed)
    total += settings.spread_cost * max(0, spread - len(used))
    return total


# --------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    what: str
    engine: str
    baseline: str
    speedup: str
    cost: str


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_one(n_modules: int, samples: int, naive_samples: int) -> tuple[Row, dict[str, float]]:
    """Median time to place one deployment on `n_modules` modules, engine vs naive."""
    modules = random_fleet(n_modules, seed=11)
    policies = standard_policies()
    wls = random_workloads(samples, seed=12, mix=MIX)
    build, fleet = _timed(partial(FleetState, modules))
    place_one(wls[0], fleet, policies)  # warm the per-cycle caches, as a running operator has
    times, costs = [], []
    for wl in wls:
        t, d = _timed(partial(place_one, wl, fleet, policies))
        times.append(t)
        costs.append(d.cost)
    naive_times, ratios = [], []
    settings = PlacementSettings()
    for i, wl in enumerate(wls[:naive_samples]):
        naive = NaiveFleet(modules)
        t, c = _timed(partial(naive_place, wl, naive, policies, settings))
        naive_times.append(t)
        if c > 0:
            ratios.append(costs[i] / c)
    eng, base = statistics.median(times), statistics.median(naive_times)
    row = Row(
        f"place one deployment, {n_modules:,} modules (median of {samples}; "
        f"naive: {naive_samples})",
        _ms(eng),
        _ms(base),
        f"{base / eng:.0f}x",
        f"engine/naive median {statistics.median(ratios):.3f}, worst {max(ratios):.3f}",
    )
    return row, {"build": build, "p90": float(np.percentile(times, 90)), "median": eng}


def _hard_unplaced(
    fleet: FleetState, wls: Sequence[WorkloadView], policies: Sequence[PolicyView]
) -> tuple[int, float]:
    """Replicas whose region no module may serve at all, and the unplaced cost they carry
    (the guaranteed premium for those below the guaranteed count): a cost every solver pays."""
    out, penalty = 0, 0.0
    for wl in wls:
        ws = prepare(fleet, wl, policies)
        hard = sum(
            int(ws.demand[r]) for r in range(len(ws.region_names)) if not ws.static_ok[r].any()
        )
        out += hard
        if hard:
            penalty += unplaced_penalty(fleet.settings, ws.total, ws.guaranteed, ws.total - hard)
    return out, penalty


def bench_fleet(
    n_modules: int, n_deployments: int, naive: bool
) -> tuple[list[Row], list[str], float]:
    modules = random_fleet(n_modules, seed=21)
    wls = random_workloads(n_deployments, seed=22, mix=MIX)
    policies = standard_policies()
    settings = PlacementSettings()
    notes: list[str] = []
    t_fleet, res = _timed(lambda: place_fleet(wls, modules, policies))
    t_seq, seq = _timed(lambda: place_sequential(wls, modules, policies))
    fleet_cost = res.total_cost
    seq_cost = seq.total_cost
    hard, penalty = _hard_unplaced(FleetState(modules), wls, policies)
    demand = sum(w.replicas * w.gpus_per_replica for w in wls)
    free = int(FleetState(modules).pool_free.sum())
    notes.append(
        f"{n_deployments:,} deployments, {sum(w.replicas for w in wls):,} replicas, "
        f"{demand:,} GPUs asked of {free:,} free; {hard} replicas have no allowed module at all "
        f"(a {penalty:,.0f} cost every method pays, left out of the 'avoidable' ratios)."
    )
    notes.append(f"fleet-wide solver: {res.solver}; {'; '.join(res.notes)}")
    unplaced = sum(d.unplaced_replicas for d in res.placements)
    seq_unplaced = sum(d.unplaced_replicas for d in seq.placements)
    rows = [
        Row(
            f"fleet-wide, {n_deployments:,} deployments x {n_modules:,} modules "
            "vs incremental mode deployment by deployment",
            _ms(t_fleet),
            _ms(t_seq),
            f"{t_seq / t_fleet:.2f}x",
            f"total {fleet_cost:,.0f} vs {seq_cost:,.0f} ({fleet_cost / seq_cost:.3f}); "
            f"avoidable {fleet_cost - penalty:,.0f} vs {seq_cost - penalty:,.0f} "
            f"({(fleet_cost - penalty) / (seq_cost - penalty):.3f}); "
            f"unplaced {unplaced} vs {seq_unplaced}",
        )
    ]
    if naive:
        nf = NaiveFleet(modules)
        t_naive, naive_cost = _timed(
            lambda: sum(
                naive_place(w, nf, policies, settings) for w in sorted(wls, key=lambda w: w.key)
            )
        )
        rows.append(
            Row(
                f"fleet-wide, {n_deployments:,} x {n_modules:,} vs naive Python loop per "
                "deployment",
                _ms(t_fleet),
                _ms(t_naive),
                f"{t_naive / t_fleet:.2f}x",
                f"total {fleet_cost:,.0f} vs {naive_cost:,.0f} ({fleet_cost / naive_cost:.3f}); "
                f"avoidable ({(fleet_cost - penalty) / (naive_cost - penalty):.3f})",
            )
        )
    return rows, notes, t_fleet


def bench_quality(n_modules: int, n_deployments: int, seed: int, label: str) -> tuple[Row, str]:
    """An instance where the MILP path runs: cost against the LP lower bound."""
    modules = random_fleet(n_modules, seed=seed)
    wls = random_workloads(n_deployments, seed=seed + 1, mix=MIX)
    policies = standard_policies()
    t_fleet, res = _timed(lambda: place_fleet(wls, modules, policies))
    t_seq, seq = _timed(lambda: place_sequential(wls, modules, policies))
    t_lb, lb = _timed(lambda: lower_bound(wls, modules, policies))
    _, penalty = _hard_unplaced(FleetState(modules), wls, policies)
    fleet_cost, seq_cost = res.total_cost, seq.total_cost
    row = Row(
        f"fleet-wide, {n_deployments} deployments x {n_modules} modules ({label}) vs "
        "incremental mode",
        _ms(t_fleet),
        _ms(t_seq),
        f"{t_seq / t_fleet:.2f}x",
        f"fleet-wide {fleet_cost:,.1f} is {100 * (fleet_cost / lb - 1):.2f}% above the LP "
        f"lower bound {lb:,.1f}, incremental {seq_cost:,.1f} {100 * (seq_cost / lb - 1):.2f}%; "
        f"avoidable {(fleet_cost - penalty) / (seq_cost - penalty):.3f}",
    )
    return row, f"{label} instance: solver {res.solver}; LP bound took {_ms(t_lb)}"


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_scale(
    n_modules: int, n_deployments: int, congestion: float, exact: bool, seed: int = 51
) -> list[str]:
    """One scale instance in a fresh process-like setting: fleet-wide time, cost, its bound,
    and beside it the exact optimum (200-module sizes) or the converged LP bound."""
    modules = random_fleet(n_modules, seed=seed)
    wls = random_workloads(n_deployments, seed=seed + 1, mix=MIX)
    if congestion > 0:
        wls = congest(modules, wls, congestion)
    policies = standard_policies()
    asked = sum(w.replicas * w.gpus_per_replica for w in wls)
    free = int(FleetState(modules).pool_free.sum())
    t_fleet, res = _timed(lambda: place_fleet(wls, modules, policies))
    rss = _rss_mb()
    unplaced = sum(d.unplaced_replicas for d in res.placements)
    label = f"congested x{congestion:g}" if congestion > 0 else "roomy"
    gap = "-" if res.gap is None else f"{100 * res.gap:.2f}%"
    cells = [
        f"{n_modules:,} x {n_deployments:,} {label} ({asked:,} GPUs asked of {free:,} free)",
        _ms(t_fleet),
        f"{res.total_cost:,.0f}",
        f"{res.lower_bound:,.0f}" if res.lower_bound is not None else "-",
        gap,
        str(unplaced),
        f"{rss:,.0f} MiB",
    ]
    if exact:
        t_ref, best = _timed(lambda: exact_cost(wls, modules, policies))
        ratio = "-" if not best else f"{res.total_cost / best:.4f}"
        cells += [
            f"exact {best:,.0f} in {_ms(t_ref)}" if best else "exact: not proven",
            ratio,
        ]
    else:
        t_lb, lb = _timed(lambda: lower_bound(wls, modules, policies))
        cells += [f"LP bound {lb:,.0f} in {_ms(t_lb)}", f"{res.total_cost / lb:.4f} (vs LP)"]
    cells.append(res.solver)
    return cells


SCALE_HEADER = (
    "| instance | fleet-wide time | cost | its lower bound | gap | unplaced | peak RSS "
    "| reference | cost / reference | solver |"
)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}; load average {load:.2f} at start "
        "(the machine was shared with other builds)"
    )


def render(rows: list[Row], notes: list[str], extra: dict[str, float], command: str) -> str:
    defaults = PlacementSettings()
    lines = [
        SECTION,
        "",
        f"Reproduce with `{command}` (results below are from one run of it).",
        "",
        f"Machine: {machine()}.",
        "",
        "Fleets, deployments and policies come from `aifactory.placement.synthetic` with fixed "
        "seeds: modules around 24 real cities with one or two GPU pools, partly allocated by "
        "other tenants and power-capped; deployments with zero to three demand regions, latency "
        "SLOs, GPU model and memory requirements, energy rules and minModules; policies with EU "
        "residency, certifications, denied countries, operator nationality and an Audit rule.",
        "",
        "Targets: one deployment on 10,000 modules in under 5 ms (median "
        f"{extra['median_10000'] * 1000:.2f} ms, 90th percentile {extra['p90_10000'] * 1000:.2f} "
        "ms); 5,000 deployments on 1,000 modules fleet-wide in under 10 s "
        f"({extra['fleet_s']:.2f} s for {extra['fleet_deployments']:,.0f} deployments on "
        f"{extra['fleet_modules']:,.0f} modules: "
        f"{'met' if extra['fleet_s'] < 10 else 'not met'}).",
        "",
        "| what | engine | baseline | speed-up | cost |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r.what} | {r.engine} | {r.baseline} | {r.speedup} | {r.cost} |")
    lines += ["", "Notes:", ""]
    lines += [f"- {n}" for n in notes]
    lines += [
        f"- FleetState (per-cycle column arrays) built in {_ms(extra['build_1000'])} for 1,000 "
        f"modules and {_ms(extra['build_10000'])} for 10,000; a running operator builds it once "
        "per cycle, so it is not in the per-deployment times (filter answers shared by "
        "deployments with the same GPU shape, policies or energy rules are cached in it too; "
        "each run warms it with one deployment first).",
        "- Baselines: *naive* is a pure-Python loop over modules (every rule checked and the "
        "cost computed module by module, then cheapest first), written the obvious way; "
        "*incremental mode* is the engine's own `place_one` applied deployment after deployment "
        "in name order, each seeing what the earlier ones took.",
        "- Cost ratios below 1 mean the engine's placement is cheaper (the brief's cost: "
        "latency and carbon terms, 1000 per unplaced replica and per module short of "
        "minModules).",
        "",
        "How the fleet-wide solver scales: the LP relaxation over every feasible (deployment, "
        "region, module) pair by column generation (HiGHS, warm-started between rounds, at "
        f"most {defaults.lp_rounds} solves per priority value), its answer rounded down and "
        "repaired by the greedy's moves, swaps and trades; up to "
        f"{defaults.milp_max_variables:,} generated columns a MILP over them (node and time "
        "limits) is solved too and the cheaper answer kept; the greedy alone when HiGHS fails. "
        "See `operator/aifactory/placement/optimize.py` and the scale section below.",
        "",
    ]
    return "\n".join(lines)


#: The heading of this benchmark's section of docs/benchmarks.md (the scale section is written
#: by hand from `--only-scale`'s table).
SECTION = "## Placement engine (bench/placement.py)"

#: (modules, deployments, congestion, exact reference) of the scale section.
SCALE_CASES: tuple[tuple[int, int, float, bool], ...] = (
    (200, 1000, 0.0, True),
    (200, 1000, 2.0, True),
    (1000, 5000, 0.0, False),
    (1000, 5000, 2.0, False),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller instances")
    parser.add_argument(
        "--no-naive-fleet", action="store_true", help="skip the slow naive fleet baseline"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--scale", action="store_true", help="add the scale section (slow)")
    parser.add_argument(
        "--only-scale", action="store_true", help="run the scale section alone, print it"
    )
    args = parser.parse_args(argv)
    if args.only_scale:
        print(SCALE_HEADER)
        print("| " + " | ".join(["---"] * 10) + " |")
        for n_mod, n_dep, congestion, exact in SCALE_CASES:
            print(
                "| " + " | ".join(bench_scale(n_mod, n_dep, congestion, exact)) + " |", flush=True
            )
        return 0
    command = "python bench/placement.py" + (" --quick" if args.quick else "")
    rows: list[Row] = []
    notes: list[str] = []
    extra: dict[str, float] = {}
    for n, samples, naive in ((1000, 200, 30), (10000, 200 if not args.quick else 60, 10)):
        row, info = bench_one(n, samples, naive)
        rows.append(row)
        extra[f"build_{n}"] = info["build"]
        extra[f"p90_{n}"] = info["p90"]
        extra[f"median_{n}"] = info["median"]
        print(
            f"| {row.what} | {row.engine} | {row.baseline} | {row.speedup} | {row.cost} |",
            flush=True,
        )
    size = (1000, 1000) if args.quick else (1000, 5000)
    fleet_rows, fleet_notes, extra["fleet_s"] = bench_fleet(*size, naive=not args.no_naive_fleet)
    extra["fleet_modules"], extra["fleet_deployments"] = size
    rows += fleet_rows
    notes += fleet_notes
    for row in fleet_rows:
        print(
            f"| {row.what} | {row.engine} | {row.baseline} | {row.speedup} | {row.cost} |",
            flush=True,
        )
    for n_mod, n_dep, seed, label in ((100, 200, 31, "roomy"), (60, 300, 41, "crowded")):
        q_row, q_note = bench_quality(n_mod, n_dep, seed, label)
        rows.append(q_row)
        notes.append(q_note)
        print(
            f"| {q_row.what} | {q_row.engine} | {q_row.baseline} | {q_row.speedup} | "
            f"{q_row.cost} |",
            flush=True,
        )
    text = render(rows, notes, extra, command)
    if not args.no_write:
        write_section(args.out, text, SECTION)
        print(f"wrote {SECTION!r} in {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
