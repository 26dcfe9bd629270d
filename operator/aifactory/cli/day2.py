"""Day-2 subcommands of `aifactoryctl`, talking to the hub with the current kubeconfig.

    aifactoryctl fleet [-o table|wide|json]                 modules: readiness, GPUs free, carbon
    aifactoryctl explain [-n NS] NAME [-o table|wide|json]  why each module was chosen or rejected
    aifactoryctl explain [-n NS] infr/NAME [-o table|json]  an InferenceRouter's tiers and routing
    aifactoryctl cordon MODULE                         place nothing new there
    aifactoryctl uncordon MODULE                       undo cordon and drain
    aifactoryctl drain MODULE [--wait SECONDS]         cordon, then ask for its replicas to move

Every command accepts `--kubeconfig` and `--context`; without either, KUBECONFIG or
~/.kube/config, the error says how to get one (`source hack/env.sh` for the local fleet).
Tables fit 100 columns: long text wraps, one reason per line; `-o wide` adds detail, `-o json`
everything. `explain` shows what the operator wrote in status (conditions, placements,
unsatisfied replicas, its per-module verdicts) and re-evaluates the running placement live
with the engine (cli/explain.py): costs with the source of each term, why a module got fewer
replicas than it could, and whether the rebalancer would move it. SOURCE says where a verdict
came from: status (the operator's) or live (the engine's, now).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from aifactory.api import (
    API_GROUP,
    API_VERSION,
    AIFactoryModule,
    InferenceDeployment,
    SovereigntyPolicy,
)
from aifactory.api.priority import PriorityClass
from aifactory.cli.explain import SOURCES, cost_line, energy_source, live_view, merge_status
from aifactory.cli.routers import ROUTER_KINDS, explain_router
from aifactory.labels import DRAIN_ANNOTATION
from aifactory.placement.from_api import priority_class_view

MODULES = "aifactorymodules"
DEPLOYMENTS = "inferencedeployments"
POLICIES = "sovereigntypolicies"
ROUTERS = "inferencerouters"
DRAIN_TIME_ANNOTATION = f"{API_GROUP}/drain-requested-at"
#: Output width of tables and wrapped text (a 100-column terminal).
WIDTH = 100
#: What the CLI says when there is no kubeconfig at all.
NO_KUBECONFIG = (
    "no kubeconfig: KUBECONFIG is not set and ~/.kube/config does not exist. For the local "
    "fleet run `make demo`, then `source hack/env.sh` in the repository (it sets KUBECONFIG "
    "to the demo hub and puts the pinned kubectl and aifactoryctl on PATH); for another "
    "cluster pass --kubeconfig FILE or set KUBECONFIG."
)


def _kubeconfig_problem(kubeconfig: str | None) -> str | None:
    """A helpful message when no kubeconfig can be found (None when one may be)."""
    if kubeconfig:
        return None
    env = os.environ.get("KUBECONFIG", "")
    if env:
        paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
        if paths and not any(p.exists() for p in paths):
            return (
                f"no kubeconfig: KUBECONFIG={env} does not exist. If it is the local fleet's "
                "hub (hack/env.sh points there), start the fleet with `make demo`."
            )
        return None
    if Path("~/.kube/config").expanduser().exists() or os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    return NO_KUBECONFIG


class HubError(RuntimeError):
    """The hub could not be reached or refused a request; the message says which."""


class Hub:
    """The few hub calls the day-2 commands make (tests substitute nothing: they run for real)."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config

        problem = _kubeconfig_problem(kubeconfig)
        if problem is not None:
            raise HubError(problem)
        try:
            api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        except (config.ConfigException, OSError) as exc:
            raise HubError(f"cannot load kubeconfig: {exc}") from None
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn()
        except ApiException as exc:
            raise HubError(f"{what}: HTTP {exc.status} {exc.reason}") from None
        except OSError as exc:  # urllib3 errors are OSErrors too
            raise HubError(f"{what}: hub unreachable ({type(exc).__name__})") from None

    def list_cluster(
        self,
        plural: str,
        *,
        label_selector: str = "",
        group: str = API_GROUP,
        version: str = API_VERSION,
    ) -> list[dict[str, Any]]:
        data = self._call(
            f"list {plural}",
            lambda: self._custom.list_cluster_custom_object(
                group, version, plural, label_selector=label_selector
            ),
        )
        return list(data.get("items", []))

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data (base64 values), e.g. the records' signing key for verification."""
        secret = self._call(
            f"get secret {namespace}/{name}",
            lambda: self._core.read_namespaced_secret(name, namespace),
        )
        return dict(secret.data or {})

    def get_module(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call(
            f"get aifactorymodule {name}",
            lambda: self._custom.get_cluster_custom_object(API_GROUP, API_VERSION, MODULES, name),
        )
        return data

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call(
            f"get inferencedeployment {namespace}/{name}",
            lambda: self._custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, DEPLOYMENTS, name
            ),
        )
        return data

    def get_router(self, namespace: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call(
            f"get inferencerouter {namespace}/{name}",
            lambda: self._custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, ROUTERS, name
            ),
        )
        return data

    def patch_module(self, name: str, patch: dict[str, Any]) -> None:
        self._call(
            f"patch aifactorymodule {name}",
            lambda: self._custom.patch_cluster_custom_object(
                API_GROUP, API_VERSION, MODULES, name, patch
            ),
        )

    def list_deployments(self) -> list[dict[str, Any]]:
        return self.list_cluster(DEPLOYMENTS)

    def priority_classes(self) -> list[dict[str, Any]]:
        """PriorityClasses of the hub (empty when they cannot be read)."""
        from kubernetes import client

        try:
            api = client.SchedulingV1Api(self._core.api_client)
            data = self._call("list priorityclasses", api.list_priority_class)
        except HubError:
            return []
        return [api.api_client.sanitize_for_serialization(pc) for pc in data.items]

    def namespace_labels(self) -> dict[str, dict[str, str]]:
        data = self._call("list namespaces", self._core.list_namespace)
        return {ns.metadata.name: dict(ns.metadata.labels or {}) for ns in data.items}


# ---------------------------------------------------------------------------------- helpers
def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "-"
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _table(
    rows: Sequence[Sequence[str]],
    out: TextIO,
    *,
    wrap_last: bool = False,
    sep: str = "   ",
    indent: str = "",
) -> None:
    """Left-aligned columns. With `wrap_last`, a last cell too long for its column goes on
    the next line(s) instead, indented, whole when it fits WIDTH and wrapped when not."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if wrap_last:  # size the last column by what fits, so the rest do not push it out
        lead = len(indent) + sum(w + len(sep) for w in widths[:-1])
        widths[-1] = min(widths[-1], max(0, WIDTH - lead))
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1], strict=True)]
        last = r[-1]
        if wrap_last and len(last) > widths[-1]:
            out.write((indent + sep.join(cells)).rstrip() + "\n")
            _wrapped(last, out, indent=indent + "  ", more=indent + "  ")
            continue
        out.write((indent + sep.join([*cells, last])).rstrip() + "\n")


def _wrapped(text: str, out: TextIO, indent: str = "  ", more: str = "    ") -> None:
    """One fact, wrapped at WIDTH with hanging indentation."""
    out.write(
        textwrap.fill(
            text,
            WIDTH,
            initial_indent=indent,
            subsequent_indent=more,
            break_long_words=False,
            break_on_hyphens=False,
        )
        + "\n"
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


# ---------------------------------------------------------------------------------- fleet
@dataclass(frozen=True)
class ModuleRow:
    """One line of `aifactoryctl fleet`."""

    name: str
    country: str
    ready: str
    reason: str
    schedulable: bool
    draining: bool
    gpus_free: int | None
    gpus_total: int | None
    renewable_share: float | None
    carbon_intensity: float | None
    heartbeat_age: str
    message: str = ""
    carbon_source: str = "spec"
    pue: float | None = None
    power_budget_kw: float | None = None
    pools: tuple[str, ...] = ()
    #: status.reliability (readyFraction, outages, longestOutageSeconds, failoversCaused, ...)
    reliability: dict[str, Any] | None = None

    @property
    def uptime(self) -> str:
        """Fraction of the reliability window the module was Ready, e.g. 100%, 99.87%."""
        fraction = (self.reliability or {}).get("readyFraction")
        if fraction is None:
            return "-"
        return "100%" if fraction >= 0.99995 else f"{100 * fraction:.2f}%"

    @property
    def state(self) -> str:
        if self.draining:
            return "Draining"
        return "Schedulable" if self.schedulable else "Cordoned"


def _carbon_source(raw: dict[str, Any]) -> str:
    try:
        return energy_source(AIFactoryModule.from_manifest(raw))
    except ValidationError:
        return "spec"


def fleet_rows(raw_modules: Sequence[dict[str, Any]], now: datetime) -> list[ModuleRow]:
    rows = []
    for raw in sorted(raw_modules, key=lambda m: m["metadata"]["name"]):
        status = raw.get("status", {}) or {}
        energy = status.get("energy", {}) or {}
        effective = status.get("effectiveEnergy", {}) or {}
        ready = _cond(raw, "Ready")
        annotations = raw["metadata"].get("annotations", {}) or {}
        spec_energy = raw["spec"]["energy"]
        pools = tuple(
            f"{p['model']} {p.get('gpusAllocated', 0)}/{p.get('gpusAllocatable', 0)}"
            for p in (status.get("capacity") or {}).get("gpus", [])
        )
        rows.append(
            ModuleRow(
                name=raw["metadata"]["name"],
                country=raw["spec"]["location"]["country"],
                ready=ready.get("status", "Unknown"),
                reason=ready.get("reason", "NoStatusYet"),
                schedulable=bool(raw["spec"].get("schedulable", True)),
                draining=annotations.get(DRAIN_ANNOTATION) == "true",
                gpus_free=status.get("gpusFree"),
                gpus_total=status.get("gpusTotal"),
                renewable_share=effective.get("renewableShare", energy.get("renewableShare")),
                carbon_intensity=effective.get(
                    "carbonIntensity",
                    energy.get("carbonIntensity", spec_energy.get("carbonIntensity")),
                ),
                heartbeat_age=_age(status.get("lastHeartbeatTime"), now),
                message=ready.get("message", ""),
                carbon_source=_carbon_source(raw),
                pue=spec_energy.get("pue"),
                power_budget_kw=spec_energy.get("powerBudgetKW"),
                pools=pools,
                reliability=status.get("reliability"),
            )
        )
    return rows


def run_fleet(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    rows = fleet_rows(_hub(args).list_cluster(MODULES), datetime.now(UTC))
    if args.output == "json":
        out.write(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "country": r.country,
                        "ready": r.ready,
                        "readyReason": r.reason,
                        "readyMessage": r.message,
                        "schedulable": r.schedulable,
                        "draining": r.draining,
                        "gpusFree": r.gpus_free,
                        "gpusTotal": r.gpus_total,
                        "renewableShare": r.renewable_share,
                        "carbonIntensity": r.carbon_intensity,
                        "carbonSource": r.carbon_source,
                        "pue": r.pue,
                        "powerBudgetKW": r.power_budget_kw,
                        "gpus": list(r.pools),
                        "lastHeartbeat": r.heartbeat_age,
                        "reliability": r.reliability,
                    }
                    for r in rows
                ],
                indent=2,
            )
            + "\n"
        )
        return 0
    if not rows:
        out.write("no AIFactoryModules in the hub\n")
        return 0
    wide = args.output == "wide"
    # GPUS: allocatable on the module's ready nodes; FREE: not requested by any pod;
    # SOURCE: where CARBON (gCO2e/kWh) comes from (spec, schedule, feed; -o wide names the feed)
    head = ["MODULE", "COUNTRY", "READY", "STATE", "GPUS", "FREE", "RENEWABLE", "CARBON"]
    # UPTIME: fraction of the reliability window the module was Ready (status.reliability)
    head += ["SOURCE", "HEARTBEAT", "UPTIME"]
    if wide:
        head += ["OUTAGES", "LONGEST", "FAILOVERS", "PUE", "POWER KW"]
        head += ["POOLS (ALLOCATED/ALLOCATABLE)"]
    table = [tuple(head)]
    for r in rows:
        line = [
            r.name,
            r.country,
            r.ready,
            r.state,
            _fmt(r.gpus_total),
            _fmt(r.gpus_free),
            _fmt(r.renewable_share),
            _fmt(r.carbon_intensity, 0),
            r.carbon_source if wide else r.carbon_source.split()[0],
            r.heartbeat_age,
            r.uptime,
        ]
        if wide:
            rel = r.reliability or {}
            longest = rel.get("longestOutageSeconds")
            line += [
                _fmt(rel.get("outages")),
                "-" if not longest else f"{longest:.0f}s",
                _fmt(rel.get("failoversCaused")),
            ]
            line += [_fmt(r.pue), _fmt(r.power_budget_kw, 1), ", ".join(r.pools) or "-"]
        table.append(tuple(line))
    _table(table, out, sep="  ")
    not_ready = [r for r in rows if r.ready != "True"]
    if not_ready:
        out.write("\nNot ready:\n")
        for r in not_ready:
            _wrapped(
                f"{r.name}: {r.reason}: {r.message}" if r.message else f"{r.name}: {r.reason}", out
            )
    free = sum(r.gpus_free or 0 for r in rows if r.ready == "True" and r.state == "Schedulable")
    ready_count = sum(r.ready == "True" for r in rows)
    out.write(f"\n{ready_count}/{len(rows)} modules Ready; {free} GPUs free on schedulable ones\n")
    return 0


# ---------------------------------------------------------------------------------- explain
@dataclass(frozen=True)
class ModuleVerdict:
    module: str
    verdict: str  # selected | not selected | rejected
    detail: str
    replicas: int
    source: str = "live"  # status: the operator's last decision; live: re-evaluated now


def status_verdicts(status: dict[str, Any]) -> list[ModuleVerdict]:
    """The operator's own per-module explanation from status.explanation (bounded there)."""
    replicas = {p["module"]: int(p.get("replicas", 0)) for p in status.get("placements") or []}
    out = []
    for name, text in sorted((status.get("explanation") or {}).items()):
        verdict, _, detail = str(text).partition(": ")
        out.append(ModuleVerdict(name, verdict, detail, replicas.get(name, 0), "status"))
    return out


def _parse(kind: type[Any], raw: dict[str, Any]) -> Any | None:
    try:
        return kind.from_manifest(raw)
    except ValidationError:
        return None


def explain_modules(
    target: InferenceDeployment,
    modules: Sequence[AIFactoryModule],
    policies: Sequence[SovereigntyPolicy],
    namespace_labels: dict[str, dict[str, str]],
    deployments: Sequence[InferenceDeployment] = (),
) -> tuple[list[ModuleVerdict], str]:
    """Per-module verdicts re-evaluated live by the engine on the running placement."""
    view = live_view(target, modules, deployments, policies, namespace_labels)
    verdicts = [
        ModuleVerdict(r.module, r.verdict, r.detail, r.replicas, "live")
        for r in sorted(view.modules.values(), key=lambda r: r.module)
    ]
    return verdicts, view.summary


def run_explain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    kind, _, name = args.name.rpartition("/")
    if kind.lower() in ROUTER_KINDS:
        return run_explain_router(hub, args.namespace, name, args.output, out)
    raw = hub.get_deployment(args.namespace, args.name)
    infd = InferenceDeployment.from_manifest(raw)
    modules = [m for r in hub.list_cluster(MODULES) if (m := _parse(AIFactoryModule, r))]
    policies = [p for r in hub.list_cluster(POLICIES) if (p := _parse(SovereigntyPolicy, r))]
    others = [d for r in hub.list_deployments() if (d := _parse(InferenceDeployment, r))]
    classes = []
    for pc in hub.priority_classes():
        try:
            classes.append(priority_class_view(PriorityClass.from_manifest(pc)))
        except ValidationError:
            continue
    status = raw.get("status", {}) or {}
    view = live_view(
        infd, modules, others, policies, hub.namespace_labels(), priority_classes=classes
    )
    reports = merge_status(view, status)
    if args.output == "json":
        out.write(
            json.dumps(
                {
                    "deployment": infd.ref,
                    "generation": raw["metadata"].get("generation"),
                    "observedGeneration": status.get("observedGeneration"),
                    "conditions": status.get("conditions", []),
                    "placements": status.get("placements", []),
                    "unsatisfied": status.get("unsatisfied"),
                    "summary": view.summary,
                    "stability": view.stability,
                    "hysteresis": view.hysteresis,
                    "freshPlacement": view.fresh,
                    "sources": SOURCES,
                    "modules": [r.to_dict() for r in reports],
                },
                indent=2,
            )
            + "\n"
        )
        return 0
    wide = args.output == "wide"
    gen, seen = raw["metadata"].get("generation"), status.get("observedGeneration")
    out.write(f"InferenceDeployment {infd.ref}\n")
    out.write(f"  generation {gen}, observed by the operator: {_fmt(seen)}\n")
    out.write(
        f"  replicas {_fmt(status.get('readyReplicas'))}/{_fmt(status.get('replicas'))} ready\n\n"
    )
    conditions = status.get("conditions", [])
    if conditions:
        out.write("Conditions (from status):\n")
        rows = [("TYPE", "STATUS", "REASON", "MESSAGE")]
        rows += [
            (c["type"], c["status"], c.get("reason", ""), c.get("message", "")) for c in conditions
        ]
        _table(rows, out, wrap_last=not wide, sep="  ")
    else:
        out.write("Conditions: none yet (the operator has not reconciled it)\n")
    placements = status.get("placements", [])
    if placements:
        out.write("\nPlacements (from status):\n")
        rows = [("MODULE", "REPLICAS", "READY", "REGIONS")]
        rows += [
            (
                p["module"],
                str(p.get("replicas", 0)),
                str(p.get("readyReplicas", 0)),
                ", ".join(f"{k}={v}" for k, v in sorted((p.get("regions") or {}).items())),
            )
            for p in placements
        ]
        _table(rows, out, wrap_last=not wide, sep="  ")
    unsatisfied = status.get("unsatisfied")
    if unsatisfied:
        out.write("\n")
        _wrapped(
            f"Unsatisfied: {unsatisfied.get('replicas')} replicas: {unsatisfied.get('reason')}",
            out,
            indent="",
            more="  ",
        )
    out.write("\nModules (SOURCE: where the verdict comes from; LIVE: the engine's verdict now):\n")
    for name, what in SOURCES.items():
        _wrapped(f"{name}: {what}", out, indent="  ", more="    ")
    _wrapped(f"live: {view.summary.strip()}", out, indent="  ", more="    ")
    running = {p["module"]: int(p.get("replicas", 0)) for p in placements}
    fresh = ", ".join(f"{m}={k}" for m, k in view.fresh.items()) or "nothing"
    _wrapped(
        f"live: keep or move (hysteresis {view.hysteresis:.0%}): {view.stability or 'new'}"
        + ("" if view.fresh == running else f"; a fresh placement now: {fresh}"),
        out,
        indent="  ",
        more="    ",
    )
    out.write("\n")
    # VERDICT and SOURCE: the operator's verdict (status) or, for modules status does not
    # cover, the engine's (live); LIVE: the engine's verdict now, for every module
    header = ("MODULE", "VERDICT", "REPLICAS", "SOURCE", "LIVE")
    cols = [header] + [
        (
            r.module,
            r.verdict,
            str(r.replicas) if r.replicas else "-",
            r.source,
            r.live_verdict or "-",
        )
        for r in reports
    ]
    widths = [max(len(c[i]) for c in cols) for i in range(len(header))]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for r, row in zip(reports, cols[1:], strict=True):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
        for rule in r.rules:
            _wrapped(rule, out)
        for c in r.costs:
            _wrapped(cost_line(c), out)
            if wide:
                scores = ", ".join(f"{k} {v:.0f}" for k, v in c["scores"].items())
                _wrapped(f"scores (0-100): {scores}", out, indent="    ", more="      ")
        for reason in r.fewer:
            _wrapped(f"fewer than it could take (live): {reason}", out)
        if r.source == "status" and r.live_verdict and r.live_verdict != r.verdict:
            _wrapped(f"now (live): {r.live_verdict}: {r.live_detail}", out)
        if wide:
            _wrapped("GPUs (live): " + (", ".join(r.gpus) or "-"), out)
            if r.source == "status":
                _wrapped(f"status: {r.verdict}: {r.detail}", out)
    return 0


def run_explain_router(hub: Hub, namespace: str, name: str, output: str, out: TextIO) -> int:
    """`explain infr/NAME`: the router's status, with each tier's effective demand."""
    raw = hub.get_router(namespace, name)
    tiers: dict[str, dict[str, Any] | None] = {}
    for t in raw.get("spec", {}).get("tiers", []):
        try:
            tiers[t["deployment"]] = hub.get_deployment(namespace, t["deployment"])
        except HubError:
            tiers[t["deployment"]] = None
    if output == "json":
        status = raw.get("status") or {}
        doc = {
            "router": f"{namespace}/{name}",
            "generation": raw["metadata"].get("generation"),
            **status,
            "effectiveDemand": {
                k: ((v or {}).get("status") or {}).get("effectiveDemand") for k, v in tiers.items()
            },
        }
        out.write(json.dumps(doc, indent=2) + "\n")
        return 0
    explain_router(raw, tiers, out)
    return 0


# ---------------------------------------------------------------------------------- cordon
def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_cordon(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    hub.get_module(args.module)  # a clear "not found" before patching
    hub.patch_module(args.module, {"spec": {"schedulable": False}})
    out.write(
        f"aifactorymodule/{args.module} cordoned: nothing new is placed there; "
        "running replicas stay\n"
    )
    return 0


def run_uncordon(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    hub.get_module(args.module)
    hub.patch_module(
        args.module,
        {
            "metadata": {"annotations": {DRAIN_ANNOTATION: None, DRAIN_TIME_ANNOTATION: None}},
            "spec": {"schedulable": True},
        },
    )
    out.write(
        f"aifactorymodule/{args.module} uncordoned: placement may use it again "
        "(nothing moves back by itself)\n"
    )
    return 0


def replicas_on(raw_deployments: Sequence[dict[str, Any]], module: str) -> dict[str, int]:
    """InferenceDeployment "ns/name" -> replicas its status places or still runs on `module`.

    Counts the placement and every replica status.heldReplicas still reports there (held for a
    handover, waiting for the budget, or with nowhere else to go): a module is drained only
    when nothing runs there any more.
    """
    out: dict[str, int] = {}
    for d in raw_deployments:
        st = d.get("status", {}) or {}
        meta = d["metadata"]
        ref = f"{meta['namespace']}/{meta['name']}"
        n = sum(
            int(p.get("replicas", 0) or 0)
            for p in st.get("placements", []) or []
            if p.get("module") == module
        )
        n += sum(
            int(h.get("replicas", 0) or 0)
            for h in st.get("heldReplicas", []) or []
            if h.get("module") == module and h.get("reason") == "Handover"
        )
        if n > 0:
            out[ref] = n
    return dict(sorted(out.items()))


def stuck_on(raw_deployments: Sequence[dict[str, Any]], module: str) -> dict[str, str]:
    """InferenceDeployment "ns/name" -> why replicas cannot leave `module` (no destination)."""
    out: dict[str, str] = {}
    for d in raw_deployments:
        st = d.get("status", {}) or {}
        held = [
            h
            for h in st.get("heldReplicas", []) or []
            if h.get("module") == module and h.get("reason") == "NoDestination"
        ]
        if not held:
            continue
        meta = d["metadata"]
        n = sum(int(h.get("replicas", 0) or 0) for h in held)
        placed = _cond(d, "Placed").get("message", "")
        out[f"{meta['namespace']}/{meta['name']}"] = f"{n} replicas have nowhere else to go" + (
            f": {placed}" if placed else ""
        )
    return dict(sorted(out.items()))


#: Polls in a row where only replicas with nowhere to go remain before drain gives up early.
STUCK_POLLS = 3


def run_drain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit 0 once no replica runs on the module; 1 when some cannot leave (each reported)."""
    out = out or sys.stdout
    hub = _hub(args)
    hub.get_module(args.module)
    hub.patch_module(
        args.module,
        {
            "metadata": {
                "annotations": {DRAIN_ANNOTATION: "true", DRAIN_TIME_ANNOTATION: _stamp()}
            },
            "spec": {"schedulable": False},
        },
    )
    deployments = hub.list_cluster(DEPLOYMENTS)
    moving = replicas_on(deployments, args.module)
    out.write(f"aifactorymodule/{args.module} cordoned and marked {DRAIN_ANNOTATION}=true\n")
    if not moving:
        out.write("no replicas run there: drained\n")
        return 0
    out.write(
        f"{sum(moving.values())} replicas to move (make-before-break: they keep serving "
        "until their replacements are Ready, at most disruptionBudget per deployment at a "
        "time):\n"
    )
    for ref, n in moving.items():
        out.write(f"  {ref}: {n}\n")
    if args.wait <= 0:
        return 0
    deadline = time.monotonic() + args.wait
    stuck_polls = 0
    stuck: dict[str, str] = {}
    while moving and time.monotonic() < deadline:
        time.sleep(2)
        deployments = hub.list_cluster(DEPLOYMENTS)
        moving = replicas_on(deployments, args.module)
        stuck = stuck_on(deployments, args.module)
        only_stuck = bool(stuck) and set(moving) <= set(stuck)
        stuck_polls = stuck_polls + 1 if only_stuck else 0
        if stuck_polls >= STUCK_POLLS:
            break
    if not moving:
        out.write("drained: no replicas left on the module\n")
        return 0
    out.write(f"not drained: replicas still on {args.module}:\n")
    for ref, n in moving.items():
        why = stuck.get(ref) or f"still moving after {args.wait:.0f}s"
        out.write(f"  {ref}: {n} ({why})\n")
    return 1


# ---------------------------------------------------------------------------------- wiring
def _hub(args: argparse.Namespace) -> Hub:
    return Hub(kubeconfig=args.kubeconfig, context=args.context)


def _connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig of the hub (default: $KUBECONFIG or ~/.kube)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except HubError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fleet`, `explain`, `cordon`, `uncordon` and `drain`."""
    p = sub.add_parser("fleet", help="modules of the hub: readiness, GPUs free, carbon")
    _connection(p)
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table")
    p.set_defaults(func=_guarded(run_fleet))

    p = sub.add_parser(
        "explain",
        help="why each module was chosen or rejected for an InferenceDeployment (infr/NAME: "
        "an InferenceRouter's tiers, routing and figures)",
        description="Print the deployment's conditions and placements from status, the "
        "operator's verdict on every module, and the engine's live re-evaluation: costs with "
        "their sources, why a module got fewer replicas than it could, and whether the "
        "rebalancer would move it.",
    )
    _connection(p)
    p.add_argument(
        "name", help="InferenceDeployment name, or infr/NAME for an InferenceRouter's tiers"
    )
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table")
    p.set_defaults(func=_guarded(run_explain))

    p = sub.add_parser("cordon", help="place nothing new on a module (running replicas stay)")
    _connection(p)
    p.add_argument("module")
    p.set_defaults(func=_guarded(run_cordon))

    p = sub.add_parser("uncordon", help="let placement use a cordoned or drained module again")
    _connection(p)
    p.add_argument("module")
    p.set_defaults(func=_guarded(run_uncordon))

    p = sub.add_parser(
        "drain",
        help="cordon a module and move its replicas elsewhere",
        description=f"Cordon the module (spec.schedulable=false) and annotate it "
        f"{DRAIN_ANNOTATION}=true, which asks the operator to re-place its replicas on other "
        "modules, make-before-break; lists the replicas to move and optionally waits.",
    )
    _connection(p)
    p.add_argument("module")
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait until no InferenceDeployment places replicas on the module (0 = do not wait)",
    )
    p.set_defaults(func=_guarded(run_drain))


__all__ = [
    "DRAIN_ANNOTATION",
    "Hub",
    "HubError",
    "ModuleRow",
    "ModuleVerdict",
    "explain_modules",
    "fleet_rows",
    "register",
    "replicas_on",
    "status_verdicts",
]
