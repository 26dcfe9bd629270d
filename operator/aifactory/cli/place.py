"""`aifactoryctl place`: decide placements offline from manifests, without any cluster.

    aifactoryctl place -f samples/ [-f more.yaml ...] [-R] [-o json|table]
                       [--mode fleet|incremental|operator] [--hysteresis F] [--disruption-budget N]
                       [--rtt FILE.csv] [--rtt-profile brief|calibrated-mean|calibrated-p95]

Three modes, and the output says which one it shows (`mode:` line, JSON `mode`):
`fleet` (default) re-solves every deployment together, what the rebalancer aims for;
`incremental` places them one by one in the operator's order (priority value descending, then
namespace/name) against what the previous ones left, as the operator's placement loop does;
`operator` is where the running operator settles: incremental placement, then the
rebalancer's fleet-wide plans with hysteresis applied over it (placement/converge.py).
`--rtt` reads measured round-trip times that replace the model for the pairs they cover, and
`--rtt-profile` picks the model's constants (docs/latency.md). Every deployment also gets its
carbon account: gCO2e/h now, the same for a latency-only solve, and both mean RTTs.
InferenceRouters give their tier deployments demand = router demand x share per region (spec
values: offline there is no live source); each router is reported with its tiers, the cascade's
mean RTT and gCO2e per 1,000 requests, and the largest tier serving everything alone
(cli/routers.py, docs/cascades.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from aifactory.cli.manifests import ManifestError, load
from aifactory.cli.routers import RouterReport, render_routers, router_reports
from aifactory.placement import (
    FleetDecision,
    FleetState,
    PlacementSettings,
    place_fleet,
)
from aifactory.placement.accounting import CarbonAccount, account_fleet
from aifactory.placement.converge import converge, place_incremental
from aifactory.placement.explain import alloc_of, free_after, holders_of, shortfalls
from aifactory.placement.from_api import engine_inputs, priority_class_view
from aifactory.placement.priority import UnknownPriorityClassError
from aifactory.placement.rtt import RTT_PROFILES, RttTable, with_rtt_profile
from aifactory.routers.tiers import derive, with_tiers
from aifactory.signals.rtt import RttTableError, parse_rtt_csv, unmatched_names

#: Table and message width, as a terminal shows without wrapping.
WIDTH = 100

#: Mode -> what the output shows, as its first line says.
MODES = {
    "fleet": "every deployment re-solved together (what the rebalancer aims for)",
    "incremental": "one deployment at a time in the operator's order, each on what the ones "
    "before it left",
    "operator": "where the running operator settles: incremental placement, then the "
    "rebalancer's fleet-wide plans with hysteresis",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `place` subcommand."""
    p = sub.add_parser(
        "place",
        help="print the placement of deployments on modules, from manifest files",
        description="Read AIFactoryModule, InferenceDeployment, SovereigntyPolicy and Namespace "
        "manifests and print where every replica would run and why.",
    )
    p.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file or directory, or - for standard input (repeatable)",
    )
    p.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="read directories given with -f recursively, as kubectl -R does",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--mode",
        choices=tuple(MODES),
        default="fleet",
        help="fleet: solve all deployments together (default); incremental: one at a time in "
        "the operator's order; operator: where the running operator settles (incremental, then "
        "the rebalancer's plans with hysteresis)",
    )
    p.add_argument(
        "--hysteresis",
        type=float,
        default=None,
        metavar="F",
        help="fraction a new placement must lower cost by to replace a running one "
        "(default 0.10, the operator's default)",
    )
    p.add_argument(
        "--disruption-budget",
        type=int,
        default=2,
        metavar="N",
        help="operator mode: replicas one deployment moves per rebalance (default 2)",
    )
    p.add_argument(
        "--rtt",
        metavar="FILE.csv",
        help="measured RTTs in ms: region,module,rttMs rows or a matrix with regions as rows "
        "and modules as columns; they replace the model for the pairs they cover",
    )
    p.add_argument(
        "--rtt-profile",
        choices=tuple(RTT_PROFILES),
        default="brief",
        help="constants of the RTT model for pairs without a measurement (default: brief)",
    )
    p.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class Placed:
    """The decision, every deployment's carbon account, and warnings about the inputs."""

    result: FleetDecision
    carbon: Mapping[str, CarbonAccount]
    warnings: tuple[str, ...] = ()
    mode: str = "fleet"
    #: Deployment -> module -> why it got fewer replicas than it could (explain.shortfalls).
    shortfalls: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    routers: tuple[RouterReport, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract, each placement with `carbon` and `shortfalls` added, and
        `routers` (each InferenceRouter's tiers and figures) when there are any."""
        doc = {"mode": self.mode, **self.result.to_dict()}
        for p in doc["placements"]:
            p["carbon"] = self.carbon[p["deployment"]].to_dict()
            found = self.shortfalls.get(p["deployment"], {})
            p["shortfalls"] = {m: list(r) for m, r in found.items()}
        if self.routers:
            doc["routers"] = [r.to_dict() for r in self.routers]
        return doc


def read_rtt(path: str) -> RttTable:
    """The measured RTT table in a file; raises RttTableError (also for an unreadable file)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RttTableError(path, [exc.strerror or str(exc)]) from None
    return parse_rtt_csv(text, source=path)


def decide(
    paths: Sequence[str],
    mode: str = "fleet",
    *,
    rtt: RttTable | None = None,
    rtt_profile: str = "brief",
    hysteresis: float | None = None,
    disruption_budget: int = 2,
    recursive: bool = False,
) -> Placed:
    """Load manifests and place them; raises ManifestError on invalid input."""
    snap = load(paths, recursive=recursive)
    tiers = derive(snap.routers, snap.deployments)  # routers' tiers carry derived demand
    classes = [priority_class_view(c) for c in snap.priority_classes]
    try:
        inputs = engine_inputs(
            snap.modules,
            with_tiers(snap.deployments, tiers),
            snap.policies,
            snap.namespaces,
            priority_classes=classes,
        )
    except UnknownPriorityClassError as exc:
        raise ManifestError([f"spec.priorityClassName: {exc}"]) from exc
    settings = with_rtt_profile(PlacementSettings(), rtt_profile)
    if hysteresis is not None:
        settings = replace(settings, hysteresis=hysteresis)
    fleet = FleetState(inputs.modules, settings, rtt=rtt)
    if mode == "operator":
        result = converge(
            inputs.workloads,
            inputs.modules,
            inputs.policies,
            settings=settings,
            rtt=rtt,
            disruption_budget=disruption_budget,
            explain_all=True,
        ).result
        solve = place_incremental
    else:
        solve = place_fleet if mode == "fleet" else place_incremental
        result = solve(inputs.workloads, fleet, inputs.policies, explain_all=True)
    carbon = account_fleet(fleet, inputs.workloads, inputs.policies, result, solve=solve)
    short = decision_shortfalls(fleet, inputs.workloads, inputs.policies, result)
    warnings: list[str] = []
    if rtt is not None:
        regions = {r.name for w in inputs.workloads for r in w.regions}
        unknown_regions, unknown_modules = unmatched_names(rtt, regions, fleet.names)
        if unknown_regions:
            warnings.append(f"{rtt.source}: unknown demand regions: {', '.join(unknown_regions)}")
        if unknown_modules:
            warnings.append(f"{rtt.source}: unknown modules: {', '.join(unknown_modules)}")
    routers = router_reports(
        tiers, snap.deployments, fleet, inputs.policies, result, snap.namespaces, classes
    )
    return Placed(result, carbon, tuple(warnings), mode, short, routers)


def decision_shortfalls(
    fleet: FleetState,
    workloads: Sequence[Any],
    policies: Sequence[Any],
    result: FleetDecision,
) -> dict[str, dict[str, list[str]]]:
    """For every deployment, the modules that got fewer of its replicas than they could, and
    why (pools full and by whom, power budget, minModules, hysteresis), against the capacity
    every decision of `result` leaves."""
    from aifactory.placement.cycle import prepare

    pool_free, power_free = free_after(fleet, result.placements)
    holders = holders_of(result.placements)
    by_key = {w.key: w for w in workloads}
    out: dict[str, dict[str, list[str]]] = {}
    for d in result.placements:
        wl = by_key.get(d.deployment)
        if wl is None:
            continue
        ws = prepare(fleet, wl, tuple(policies))
        found = shortfalls(
            fleet,
            ws,
            alloc_of(fleet, ws, d),
            pool_free,
            power_free,
            holders=holders,
            stability=d.stability,
        )
        if found:
            out[d.deployment] = found
    return out


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the decision was printed (even with unplaced replicas), 1 on bad input."""
    try:
        rtt = read_rtt(args.rtt) if args.rtt else None
        placed = decide(
            args.paths,
            args.mode,
            rtt=rtt,
            rtt_profile=args.rtt_profile,
            hysteresis=args.hysteresis,
            disruption_budget=args.disruption_budget,
            recursive=args.recursive,
        )
    except (ManifestError, RttTableError) as exc:
        print("error: invalid input:", file=sys.stderr)
        for problem in exc.problems:
            where = f"{exc.source}: " if isinstance(exc, RttTableError) else ""
            print(f"  {where}{problem}", file=sys.stderr)
        return 1
    for warning in placed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output == "json":
        json.dump(placed.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_table(
            placed.result,
            sys.stdout,
            accounts=placed.carbon,
            mode=placed.mode,
            shortfalls=placed.shortfalls,
            routers=placed.routers,
        )
    return 0


def _table(rows: Sequence[Sequence[str]], out: TextIO, indent: str = "") -> None:
    """Left-aligned columns sized to their content, like kubectl's default output."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
        out.write(indent + line.rstrip() + "\n")


def render_table(
    result: FleetDecision,
    out: TextIO,
    accounts: Mapping[str, CarbonAccount] | None = None,
    *,
    mode: str | None = None,
    shortfalls: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    routers: Sequence[RouterReport] = (),
) -> None:
    """The mode, then deployments (priority, replicas placed/needed, modules, carbon in
    gCO2e/kWh, cost), then per deployment the chosen modules with latency per region, its
    carbon account, what it preempts, what was rejected and why, which modules got fewer
    replicas than they could and why, then the modules' GPU usage, the total cost, the bound
    and the gap."""
    if mode is not None:
        out.write(_wrap(f"mode: {mode} ({MODES[mode]})", "      ") + "\n")
        for note in result.notes if mode == "operator" else ():
            out.write(_wrap(f"  {note}", "    ") + "\n")
        out.write("\n")
    rows = [["DEPLOYMENT", "PRIO", "PLACED", "MODULES", "CARBON", "COST"]]
    for d in result.placements:
        modules = ",".join(f"{a.module}={a.replicas}" for a in d.assignments) or "-"
        carbon = "-" if d.carbon_intensity is None else f"{d.carbon_intensity:.0f}"
        rows.append(
            [
                d.deployment,
                str(d.priority),
                f"{d.placed_replicas}/{d.replicas}",
                modules,
                carbon,
                f"{d.cost:.3f}",
            ]
        )
    _table(rows, out)
    for d in result.placements:
        out.write("\n" + textwrap.fill(f"{d.deployment}: {d.message}", WIDTH) + "\n")
        if d.stability:
            out.write(_wrap(f"  stability: {d.stability}", "    ") + "\n")
        account = (accounts or {}).get(d.deployment)
        if account is not None:
            out.write(f"  carbon: {_carbon_line(account)}\n")
        for p in d.preemptions:
            out.write(
                f"  preempts: {p.replicas} replicas of {p.deployment} (priority {p.priority}) "
                f"on {p.module}\n"
            )
        if d.assignments:
            header = ["MODULE", "REPLICAS", "REGIONS", "LATENCY (ms)", "CARBON", "GPUS"]
            cells = [
                [
                    [a.module],
                    [str(a.replicas)],
                    [f"{r}={k}" for r, k in a.regions.items()] or ["-"],
                    [f"{r}={v:.1f}" for r, v in a.latency_ms.items()] or ["-"],
                    [f"{a.carbon_intensity:.0f}"],
                    [",".join(f"{m}={n}" for m, n in a.gpus.items())],
                ]
                for a in d.assignments
            ]
            rows = [header] + [[",".join(c) for c in row] for row in cells]
            if _width(rows, "  ") <= WIDTH:
                _table(rows, out, indent="  ")
            else:  # many regions: one per line
                lines = [header]
                for row in cells:
                    for i in range(max(len(c) for c in row)):
                        lines.append([c[i] if i < len(c) else "" for c in row])
                _table(lines, out, indent="  ")
        if d.unplaced_regions:
            where = ", ".join(f"{r}={k}" if r else str(k) for r, k in d.unplaced_regions.items())
            out.write(f"  unplaced: {where}\n")
        rejected = [(m, why) for m, why in d.explanation.items() if why.startswith("rejected: ")]
        if rejected:
            out.write("  rejected:\n")
            pad = max(len(name) for name, _ in rejected)
            for name, why in rejected:
                text = f"    {name.ljust(pad)}  {why.removeprefix('rejected: ')}"
                out.write(_wrap(text, " " * (pad + 6)) + "\n")
        fewer = (shortfalls or {}).get(d.deployment, {})
        if fewer:
            out.write("  modules with fewer replicas than they could take:\n")
            for module, reasons in sorted(fewer.items()):
                for reason in reasons:
                    out.write(_wrap(f"    {module}: {reason}", "      ") + "\n")
        for finding in d.audit:
            out.write(f"  audit: {finding}\n")
    render_routers(routers, out)
    out.write("\n")
    rows = [["MODULE", "GPUS USED", "GPUS FREE", "GPUS TOTAL"]]
    for m in result.modules:
        rows.append([m.name, str(m.gpus_used), str(m.gpus_free), str(m.gpus_total)])
    _table(rows, out)
    bound = "-" if result.lower_bound is None else f"{result.lower_bound:.3f}"
    gap = "-" if result.gap is None else f"{100 * result.gap:.2f}%"
    out.write(
        f"\ntotal cost: {result.total_cost:.3f} (solver: {result.solver}; lower bound {bound}; "
        f"gap {gap})\n"
    )


def _width(rows: Sequence[Sequence[str]], indent: str) -> int:
    """The width `_table` prints these rows with."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return len(indent) + sum(widths) + 2 * (len(widths) - 1)


def _wrap(text: str, indent: str) -> str:
    """One logical line wrapped at WIDTH, continuation lines indented."""
    return textwrap.fill(
        text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _carbon_line(a: CarbonAccount) -> str:
    """ "1,234 gCO2e/h now, 5,678 latency-only; mean RTT 21.0 ms vs 9.5 ms"."""
    text = f"{a.grams_per_hour:,.0f} gCO2e/h now, {a.latency_only_grams_per_hour:,.0f} latency-only"
    if a.mean_rtt_ms is not None and a.latency_only_mean_rtt_ms is not None:
        text += f"; mean RTT {a.mean_rtt_ms:.1f} ms vs {a.latency_only_mean_rtt_ms:.1f} ms"
    return text
