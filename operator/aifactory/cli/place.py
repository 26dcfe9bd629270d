"""`aifactoryctl place`: decide placements offline from manifests, without any cluster.

    aifactoryctl place -f samples/ [-f more.yaml ...] [-o json|table] [--mode fleet|incremental]
                       [--rtt FILE.csv] [--rtt-profile brief|calibrated-mean|calibrated-p95]

`fleet` (default) re-solves every deployment together; `incremental` places them one by one in
name order against what the previous ones left, as the operator does on each create/update.
`--rtt` reads measured round-trip times that replace the model for the pairs they cover, and
`--rtt-profile` picks the model's constants (docs/latency.md). Every deployment also gets its
carbon account: gCO2e/h now, the same for a latency-only solve, and both mean RTTs.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aifactory.cli.manifests import ManifestError, load
from aifactory.placement import (
    FleetDecision,
    FleetState,
    PlacementSettings,
    place_fleet,
    place_sequential,
)
from aifactory.placement.accounting import CarbonAccount, account_fleet
from aifactory.placement.from_api import engine_inputs, priority_class_view
from aifactory.placement.priority import UnknownPriorityClassError
from aifactory.placement.rtt import RTT_PROFILES, RttTable, with_rtt_profile
from aifactory.signals.rtt import RttTableError, parse_rtt_csv, unmatched_names

#: Table and message width, as a terminal shows without wrapping.
WIDTH = 100


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
        choices=("fleet", "incremental"),
        default="fleet",
        help="fleet: solve all deployments together (default); incremental: one at a time",
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract, each placement with `carbon` added."""
        doc = self.result.to_dict()
        for p in doc["placements"]:
            p["carbon"] = self.carbon[p["deployment"]].to_dict()
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
    recursive: bool = False,
) -> Placed:
    """Load manifests and place them; raises ManifestError on invalid input."""
    snap = load(paths, recursive=recursive)
    try:
        inputs = engine_inputs(
            snap.modules,
            snap.deployments,
            snap.policies,
            snap.namespaces,
            priority_classes=[priority_class_view(c) for c in snap.priority_classes],
        )
    except UnknownPriorityClassError as exc:
        raise ManifestError([f"spec.priorityClassName: {exc}"]) from exc
    settings = with_rtt_profile(PlacementSettings(), rtt_profile)
    fleet = FleetState(inputs.modules, settings, rtt=rtt)
    solve = place_fleet if mode == "fleet" else place_sequential
    result = solve(inputs.workloads, fleet, inputs.policies, explain_all=True)
    carbon = account_fleet(fleet, inputs.workloads, inputs.policies, result, solve=solve)
    warnings: list[str] = []
    if rtt is not None:
        regions = {r.name for w in inputs.workloads for r in w.regions}
        unknown_regions, unknown_modules = unmatched_names(rtt, regions, fleet.names)
        if unknown_regions:
            warnings.append(f"{rtt.source}: unknown demand regions: {', '.join(unknown_regions)}")
        if unknown_modules:
            warnings.append(f"{rtt.source}: unknown modules: {', '.join(unknown_modules)}")
    return Placed(result, carbon, tuple(warnings))


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the decision was printed (even with unplaced replicas), 1 on bad input."""
    try:
        rtt = read_rtt(args.rtt) if args.rtt else None
        placed = decide(
            args.paths,
            args.mode,
            rtt=rtt,
            rtt_profile=args.rtt_profile,
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
        render_table(placed.result, sys.stdout, accounts=placed.carbon)
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
    result: FleetDecision, out: TextIO, accounts: Mapping[str, CarbonAccount] | None = None
) -> None:
    """Deployments (priority, replicas placed/needed, modules, carbon in gCO2e/kWh, cost),
    then per deployment the chosen modules with latency per region, its carbon account, what
    it preempts, what was rejected and why, then the modules' GPU usage, the total cost, the
    bound and the gap."""
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
            out.write(f"  stability: {d.stability}\n")
        account = (accounts or {}).get(d.deployment)
        if account is not None:
            out.write(f"  carbon: {_carbon_line(account)}\n")
        for p in d.preemptions:
            out.write(
                f"  preempts: {p.replicas} replicas of {p.deployment} (priority {p.priority}) "
                f"on {p.module}\n"
            )
        if d.assignments:
            rows = [["MODULE", "REPLICAS", "REGIONS", "LATENCY (ms)", "CARBON", "GPUS"]]
            for a in d.assignments:
                rows.append(
                    [
                        a.module,
                        str(a.replicas),
                        ",".join(f"{r}={k}" for r, k in a.regions.items()) or "-",
                        ",".join(f"{r}={v:.1f}" for r, v in a.latency_ms.items()) or "-",
                        f"{a.carbon_intensity:.0f}",
                        ",".join(f"{m}={n}" for m, n in a.gpus.items()),
                    ]
                )
            _table(rows, out, indent="  ")
        if d.unplaced_regions:
            where = ", ".join(f"{r}={k}" if r else str(k) for r, k in d.unplaced_regions.items())
            out.write(f"  unplaced: {where}\n")
        rejected = [(m, why) for m, why in d.explanation.items() if why.startswith("rejected: ")]
        if rejected:
            out.write("  rejected:\n")
            _table([[m, why.removeprefix("rejected: ")] for m, why in rejected], out, "    ")
        for finding in d.audit:
            out.write(f"  audit: {finding}\n")
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


def _carbon_line(a: CarbonAccount) -> str:
    """ "1,234 gCO2e/h now, 5,678 latency-only; mean RTT 21.0 ms vs 9.5 ms"."""
    text = f"{a.grams_per_hour:,.0f} gCO2e/h now, {a.latency_only_grams_per_hour:,.0f} latency-only"
    if a.mean_rtt_ms is not None and a.latency_only_mean_rtt_ms is not None:
        text += f"; mean RTT {a.mean_rtt_ms:.1f} ms vs {a.latency_only_mean_rtt_ms:.1f} ms"
    return text
