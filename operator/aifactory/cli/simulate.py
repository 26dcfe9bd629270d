"""`aifactoryctl simulate`: replay a period through the engine and the operator's rules, offline.

    aifactoryctl simulate -f samples/simulation/ --carbon samples/simulation/carbon-2022.csv.gz \\
        [--start 2022-01-01 --end 2023-01-01 --step 1h] [--zones FILE.csv] \\
        [--demand FILE.csv | --populations FILE.csv --demand-weights population|spec ...] \\
        [--rtt FILE.csv] [--rtt-profile PROFILE] [--event "TIME KIND TARGET [ARGS]"]... \\
        [--events FILE] [--policies engine,latency-only,carbon-only,serve-in-country,static] \\
        [-o table|json] [--out DIR] [--report FILE.html] [--workers N] [--strict]

Every policy runs through the same engine and rebalancing rules as the operator
(`aifactory.simulation`); docs/simulation.md explains the model and its inputs. Exit 0 when the
run completed with every hard rule held, 3 when a hard rule broke in some policy (the findings
say where), 1 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aifactory.cli.manifests import ManifestError
from aifactory.cli.place import read_rtt
from aifactory.placement.rtt import RTT_PROFILES
from aifactory.signals.rtt import RttTableError, unmatched_names
from aifactory.simulation import (
    POLICY_NAMES,
    DemandOptions,
    SimulationConfig,
    SimulationError,
    build_timeline,
    load_scenario,
    simulate,
)
from aifactory.simulation.demand import DemandError, Diurnal, read_populations
from aifactory.simulation.events import EventError, parse_duration, parse_time, read_events
from aifactory.simulation.report import document, report_files, write_html, write_outputs
from aifactory.simulation.series import SeriesError, load_carbon, read_text, read_zone_map

EXIT_RULES_BROKEN = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `simulate` subcommand."""
    p = sub.add_parser(
        "simulate",
        help="replay a period (carbon, demand, events) through the engine, policy by policy",
        description="Replay a period step by step through the operator's placement engine and "
        "rebalancing rules, for the engine as configured and four baselines, from manifests, "
        "carbon series by grid zone, demand and injected events; prints a summary and writes "
        "series, plots and an HTML report.",
    )
    p.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file or directory (modules, deployments, policies, namespaces, "
        "PriorityClasses; repeatable)",
    )
    p.add_argument("-R", "--recursive", action="store_true", help="read directories recursively")
    p.add_argument(
        "--carbon",
        action="append",
        default=[],
        metavar="FILE.csv[.gz]",
        help="hourly carbon intensity by grid zone (datetime_utc,ZONE,... in gCO2e/kWh); "
        "repeatable, later files win",
    )
    p.add_argument(
        "--zones",
        metavar="FILE.csv",
        help="module,zone rows; else each module's aifactory.dev/grid-zone label or "
        "annotation, else spec.energy.signal.zone",
    )
    p.add_argument("--start", default="2022-01-01T00:00Z", help="ISO 8601, UTC by default")
    p.add_argument("--end", default="2023-01-01T00:00Z", help="ISO 8601, exclusive")
    p.add_argument("--step", default="1h", help="step length (e.g. 1h, 30m); default 1h")
    p.add_argument(
        "--demand",
        metavar="FILE.csv",
        help="time,region,requestsPerSecond[,deployment] rows instead of generated demand",
    )
    p.add_argument(
        "--populations", metavar="FILE.csv", help="region,population rows for generated demand"
    )
    p.add_argument(
        "--demand-weights",
        choices=("population", "spec"),
        default="population",
        help="share of a deployment's demand per region: by population (default) or by its "
        "declared requestsPerSecond",
    )
    p.add_argument("--diurnal-amplitude", type=float, default=Diurnal().amplitude)
    p.add_argument("--diurnal-peak-hour", type=float, default=Diurnal().peak_hour)
    p.add_argument("--no-burst", action="store_true", help="no minute-scale burstiness")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated demand (default 0)")
    p.add_argument("--rtt", metavar="FILE.csv", help="measured RTTs (as aifactoryctl place)")
    p.add_argument("--rtt-profile", choices=tuple(RTT_PROFILES), default=None)
    p.add_argument(
        "--event",
        action="append",
        default=[],
        metavar='"TIME KIND TARGET [ARGS]"',
        help="e.g. '2022-03-01T10:00Z module-down oslo', '... cordon paris', "
        "'... demand-spike eu-west 3 6h' (repeatable)",
    )
    p.add_argument("--events", metavar="FILE", help="one event per line, # comments")
    p.add_argument(
        "--policies",
        default=",".join(POLICY_NAMES),
        help=f"comma-separated, from {', '.join(POLICY_NAMES)} (default: all)",
    )
    defaults = SimulationConfig.from_operator()
    p.add_argument("--hysteresis", type=float, default=defaults.hysteresis)
    p.add_argument("--budget", type=int, default=defaults.disruption_budget)
    p.add_argument(
        "--rebalance-interval",
        default=f"{defaults.rebalance_interval_s:g}s",
        help="the operator's rebalance_interval (default 300s)",
    )
    p.add_argument("--toleration", default=f"{defaults.toleration_s:g}s", help="tolerationSeconds")
    p.add_argument(
        "--workers", type=int, default=2, help="processes to run policies in (default 2)"
    )
    p.add_argument("--strict", action="store_true", help="stop at the first broken hard rule")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--out", metavar="DIR", help="write summary, series and plots to DIR")
    p.add_argument("--report", metavar="FILE.html", help="write the HTML report")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal)",
    )
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("simulate", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def inputs_info(
    built: Any, scenario: Any, carbon_sources: list[str], rtt: str | None, events: list[str]
) -> dict[str, Any]:
    """What went in, for the document and the report."""
    energy = built.timeline.energy
    means = energy.mean_true()
    modules = [
        {
            "name": m.name,
            "country": m.spec.location.country,
            "zone": energy.zones[i],
            "meanCarbonIntensity": round(means[m.name], 2),
            "gpus": m.total_gpus(),
        }
        for i, m in enumerate(scenario.modules)
    ]
    deployments = []
    for d in scenario.deployments:
        profiles = built.demand.profiles.get(d.ref, ())
        deployments.append(
            {
                "deployment": d.ref,
                "regions": [
                    {
                        "name": p.name,
                        "population": round(p.population),
                        "timezone": p.timezone,
                        "source": p.source,
                    }
                    for p in profiles
                ],
            }
        )
    return {
        "modules": modules,
        "deployments": deployments,
        "carbon": carbon_sources,
        "demand": built.demand.source,
        "rtt": rtt,
        "events": events,
        "warnings": list(built.warnings),
    }


def run(args: argparse.Namespace) -> int:
    """Load, simulate, print and write; see the module docstring for exit codes."""
    try:
        return _run(args)
    except (
        ManifestError,
        RttTableError,
        SeriesError,
        DemandError,
        EventError,
        SimulationError,
        ValueError,
    ) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        print("error: invalid input:", file=sys.stderr)
        for problem in problems:
            where = f"{exc.source}: " if isinstance(exc, RttTableError) else ""
            print(f"  {where}{problem}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    scenario = load_scenario(args.paths, recursive=args.recursive)
    start, end = parse_time(args.start), parse_time(args.end)
    names = tuple(n.strip() for n in args.policies.split(",") if n.strip())
    overrides: dict[str, Any] = {
        "step_s": _seconds(args.step),
        "rebalance_interval_s": _seconds(args.rebalance_interval),
        "toleration_s": _seconds(args.toleration),
        "hysteresis": args.hysteresis,
        "disruption_budget": args.budget,
        "policies": names,
        "workers": max(1, args.workers),
        "strict": args.strict,
    }
    if args.rtt_profile:
        overrides["rtt_profile"] = args.rtt_profile
    config = SimulationConfig.from_operator(**overrides)
    lines = list(args.event)
    if args.events:
        lines += read_text(args.events).splitlines()
    events = list(read_events(lines))
    rtt = read_rtt(args.rtt) if args.rtt else None
    warnings: list[str] = []
    if rtt is not None:
        regions = {r.name for d in scenario.deployments for r in d.spec.demand.regions}
        bad_regions, bad_modules = unmatched_names(rtt, regions, scenario.module_names)
        if bad_regions:
            warnings.append(f"{rtt.source}: unknown demand regions: {', '.join(bad_regions)}")
        if bad_modules:
            warnings.append(f"{rtt.source}: unknown modules: {', '.join(bad_modules)}")
    carbon = load_carbon(args.carbon)
    demand = DemandOptions(
        csv=args.demand,
        seed=args.seed,
        weights=args.demand_weights,
        diurnal=Diurnal(args.diurnal_amplitude, args.diurnal_peak_hour),
        burst=not args.no_burst,
        populations=read_populations(args.populations) if args.populations else {},
    )
    built = build_timeline(
        scenario,
        config,
        start=start,
        end=end,
        carbon=carbon,
        zone_map=read_zone_map(args.zones) if args.zones else None,
        demand=demand,
        events=events,
    )
    show = sys.stderr.isatty() if args.progress is None else args.progress
    with _progress(show) as progress:
        results = simulate(scenario, built.timeline, config, rtt=rtt, progress=progress)
    info = inputs_info(
        built,
        scenario,
        list(args.carbon),
        rtt.source if rtt else None,
        [e.describe() for e in events],
    )
    info["warnings"] = warnings + info["warnings"]
    times = built.timeline.step_times
    doc = document(
        results, config=config, step_times=times, inputs=info, series=args.output == "json"
    )
    doc["elapsedSeconds"] = round(time.perf_counter() - began, 3)
    for w in info["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    images: dict[str, list[Path]] = {}
    if args.out:
        images = write_outputs(Path(args.out), doc, results, times, config.step_s)
    if args.report:
        if not images:
            from aifactory.simulation.report import plots

            images = plots(results, times, Path(args.report).parent / "images")
        write_html(Path(args.report), doc, images)
    if args.output == "json":
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        p = doc["period"]
        print(f"{p['start']} .. {p['end']}: {p['steps']:,} steps, {doc['elapsedSeconds']:.1f} s")
        sys.stdout.write(report_files(doc))
        for found in doc["findings"].values():
            for line in found:
                print(f"finding: {line}")
    broken = any(
        s["sovereigntyViolations"] or s["sloViolations"] or s["capacityViolations"]
        for s in doc["policies"]
    )
    return EXIT_RULES_BROKEN if broken else 0


__all__ = ["EXIT_RULES_BROKEN", "inputs_info", "register", "run"]
