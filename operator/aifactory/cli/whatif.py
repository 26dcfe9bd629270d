"""`aifactoryctl what-if`: what the operator would do if the fleet changed. Changes nothing.

    aifactoryctl what-if [--lose-module X]... [--cordon Y]... [--policy FILE]...
                         [--scale-demand REGION=FACTOR]... [--rebalance]
                         [-f PATH]... [--rtt FILE.csv] [--rtt-profile P] [-o table|json]
                         [--kubeconfig FILE] [--context NAME]

Without `-f` it reads the live hub (AIFactoryModules, InferenceDeployments with their status,
SovereigntyPolicies, Namespaces, PriorityClasses) with GET and LIST only; with `-f` it reads
manifest files instead. Prints, per deployment, the placement before and after, replicas moved
(and how many at once), compliance changes, and the cost, gCO2e/h and mean RTT before and
after (`aifactory.simulation.whatif`). Exit 0 when it answered, 1 on bad input or an
unreachable hub.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import ValidationError

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.api.priority import PriorityClass
from aifactory.cli.day2 import DEPLOYMENTS, MODULES, POLICIES, Hub, HubError
from aifactory.cli.manifests import ManifestError, load
from aifactory.cli.place import WIDTH, read_rtt
from aifactory.placement import PlacementSettings
from aifactory.placement.from_api import priority_class_view
from aifactory.placement.rtt import RTT_PROFILES, with_rtt_profile
from aifactory.signals.rtt import RttTableError
from aifactory.simulation import Scenario
from aifactory.simulation.inputs import scenario_of
from aifactory.simulation.whatif import (
    Change,
    WhatIf,
    WhatIfError,
    parse_change,
    policy_change,
    what_if,
)


class ReadOnlyHub(Hub):
    """The day-2 hub client plus the one read what-if needs beyond it (PriorityClasses)."""

    def list_deployments(self) -> list[dict[str, Any]]:
        return self.list_cluster(DEPLOYMENTS)

    def priority_classes(self) -> list[dict[str, Any]]:
        from kubernetes import client

        api = client.SchedulingV1Api(self._custom.api_client)
        data = self._call("list priorityclasses", api.list_priority_class)
        raw: list[dict[str, Any]] = self._custom.api_client.sanitize_for_serialization(data.items)
        return raw


def read_hub(hub: ReadOnlyHub) -> tuple[Scenario, list[str]]:
    """The live fleet as a Scenario, and the objects that could not be read (skipped)."""
    skipped: list[str] = []

    def parse(kind: type[Any], items: Sequence[dict[str, Any]]) -> list[Any]:
        out = []
        for raw in items:
            try:
                out.append(kind.from_manifest(raw))
            except ValidationError as exc:
                name = raw.get("metadata", {}).get("name", "?")
                skipped.append(f"{kind.__name__} {name}: {exc.error_count()} invalid fields")
        return out

    modules = parse(AIFactoryModule, hub.list_cluster(MODULES))
    deployments = parse(InferenceDeployment, hub.list_deployments())
    policies = parse(SovereigntyPolicy, hub.list_cluster(POLICIES))
    classes = parse(PriorityClass, hub.priority_classes())
    return (
        Scenario(
            modules=tuple(modules),
            deployments=tuple(deployments),
            policies=tuple(policies),
            namespaces=hub.namespace_labels(),
            priority_classes=tuple(priority_class_view(c) for c in classes),
        ),
        skipped,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `what-if` subcommand."""
    p = sub.add_parser(
        "what-if",
        help="what the operator would do if a module were lost or cordoned, a policy applied "
        "or demand scaled (changes nothing)",
        description="Compute, without applying anything, how the placement would change: "
        "reads the live hub (or -f files), applies the changes in memory and runs the "
        "operator's keep-or-repair (and with --rebalance its next fleet-wide rebalance).",
    )
    p.add_argument("--lose-module", action="append", default=[], metavar="MODULE")
    p.add_argument("--cordon", action="append", default=[], metavar="MODULE")
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="SovereigntyPolicy manifest(s) to apply (added, or replacing one of that name)",
    )
    p.add_argument(
        "--scale-demand",
        action="append",
        default=[],
        metavar="REGION=FACTOR",
        help="e.g. eu-west=2",
    )
    p.add_argument(
        "--rebalance",
        action="store_true",
        help="also take the next fleet-wide rebalance to its end (else only forced changes)",
    )
    p.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        default=[],
        metavar="PATH",
        help="manifests instead of the live hub (repeatable)",
    )
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("--rtt", metavar="FILE.csv", help="measured RTTs (as aifactoryctl place)")
    p.add_argument("--rtt-profile", choices=tuple(RTT_PROFILES), default="brief")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--kubeconfig", help="kubeconfig of the hub (default: $KUBECONFIG or ~/.kube)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.set_defaults(func=run)


def changes_from(args: argparse.Namespace) -> list[Change]:
    out = [parse_change("lose-module", m) for m in args.lose_module]
    out += [parse_change("cordon", m) for m in args.cordon]
    for path in args.policy:
        snap = load([path])
        if not snap.policies:
            raise WhatIfError(f"--policy {path}: no SovereigntyPolicy in the file")
        out += [policy_change(p) for p in snap.policies]
    out += [parse_change("scale-demand", v) for v in args.scale_demand]
    return out


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit 0 with the answer printed; 1 on bad input or when the hub cannot be read."""
    out = out or sys.stdout
    try:
        changes = changes_from(args)
        skipped: list[str] = []
        if args.paths:
            scenario = scenario_of(load(args.paths, recursive=args.recursive))
        else:
            scenario, skipped = read_hub(
                ReadOnlyHub(kubeconfig=args.kubeconfig, context=args.context)
            )
        rtt = read_rtt(args.rtt) if args.rtt else None
        settings = with_rtt_profile(PlacementSettings(), args.rtt_profile)
        answer = what_if(scenario, changes, settings=settings, rtt=rtt, rebalance=args.rebalance)
    except (ManifestError, RttTableError, WhatIfError, HubError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        print("error:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for line in skipped:
        print(f"warning: skipped {line}", file=sys.stderr)
    if args.output == "json":
        out.write(json.dumps(answer.to_dict(), indent=2) + "\n")
    else:
        render(answer, out)
    return 0


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="    ") + "\n"


def _mods(m: dict[str, int] | Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(dict(m).items())) or "-"


def render(answer: WhatIf, out: TextIO) -> None:
    """A table per deployment that changes, then the totals (<= 100 columns)."""
    out.write("what if: " + ("; ".join(c.describe() for c in answer.changes) or "nothing") + "\n")
    out.write(f"before: {answer.before_source}\n")
    out.write(
        "after: the operator's keep-or-repair"
        + (" and its next rebalance, to the end" if answer.rebalance else "")
        + "\n\n"
    )
    rows = [["DEPLOYMENT", "MOVED", "AT ONCE", "UNPLACED", "gCO2e/h", "RTT ms", "COST"]]
    for d in answer.deployments:
        rtt = (
            "-"
            if d.rtt_before is None or d.rtt_after is None
            else f"{d.rtt_before:.1f}>{d.rtt_after:.1f}"
        )
        rows.append(
            [
                d.deployment,
                str(d.moved),
                str(d.at_once),
                f"{d.unplaced_before}>{d.unplaced_after}",
                f"{d.grams_before:,.0f}>{d.grams_after:,.0f}",
                rtt,
                f"{d.cost_before:.2f}>{d.cost_after:.2f}",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    for d in answer.deployments:
        if not d.changed and not d.newly_forbidden and d.audit_before == d.audit_after:
            continue
        out.write(f"\n{d.deployment}\n")
        out.write(f"  before: {_mods(d.before)}\n  after:  {_mods(d.after)}\n")
        for line in d.newly_forbidden:
            out.write(_wrap(f"now forbidden (leaves at once): {line}"))
        for line in sorted(set(d.audit_after) - set(d.audit_before)):
            out.write(_wrap(f"new audit finding: {line}"))
        for line in sorted(set(d.audit_before) - set(d.audit_after)):
            out.write(_wrap(f"audit finding gone: {line}"))
    t = answer.totals()
    out.write(
        f"\ntotal: {t['replicasMoved']} replicas moved ({t['movedAtOnce']} at once), unplaced "
        f"{t['unplacedBefore']} -> {t['unplacedAfter']}, {t['gramsPerHourBefore']:,.0f} -> "
        f"{t['gramsPerHourAfter']:,.0f} gCO2e/h, cost {t['costBefore']:.2f} -> "
        f"{t['costAfter']:.2f}\n"
    )
    for note in answer.notes:
        out.write(f"note: {note}\n")


__all__ = ["ReadOnlyHub", "changes_from", "read_hub", "register", "render", "run"]
