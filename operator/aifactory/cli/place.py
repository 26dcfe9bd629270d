"""`aifactoryctl place`: decide placements offline from manifests, without any cluster.

    aifactoryctl place -f samples/ [-f more.yaml ...] [-o json|table] [--mode fleet|incremental]

`fleet` (default) re-solves every deployment together; `incremental` places them one by one in
name order against what the previous ones left, as the operator does on each create/update.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from aifactory.cli.manifests import ManifestError, load
from aifactory.placement import FleetDecision, place_fleet, place_sequential
from aifactory.placement.from_api import engine_inputs, priority_class_view
from aifactory.placement.priority import UnknownPriorityClassError

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
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--mode",
        choices=("fleet", "incremental"),
        default="fleet",
        help="fleet: solve all deployments together (default); incremental: one at a time",
    )
    p.set_defaults(func=run)


def decide(paths: Sequence[str], mode: str = "fleet") -> FleetDecision:
    """Load manifests and place them; raises ManifestError on invalid input."""
    snap = load(paths)
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
    solve = place_fleet if mode == "fleet" else place_sequential
    return solve(inputs.workloads, inputs.modules, inputs.policies, explain_all=True)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the decision was printed (even with unplaced replicas), 1 on bad input."""
    try:
        result = decide(args.paths, args.mode)
    except ManifestError as exc:
        print("error: invalid input:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.output == "json":
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_table(result, sys.stdout)
    return 0


def _table(rows: Sequence[Sequence[str]], out: TextIO, indent: str = "") -> None:
    """Left-aligned columns sized to their content, like kubectl's default output."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
        out.write(indent + line.rstrip() + "\n")


def render_table(result: FleetDecision, out: TextIO) -> None:
    """Deployments (priority, replicas placed/needed, modules, carbon in gCO2e/kWh, cost),
    then per deployment the chosen modules with latency per region, what it preempts, what was
    rejected and why, then the modules' GPU usage, the total cost, the bound and the gap."""
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
