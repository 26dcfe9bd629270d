"""Day-2 subcommands of `aifactoryctl`, talking to the hub with the current kubeconfig.

    aifactoryctl fleet [-o table|json]                 modules: readiness, GPUs free, carbon
    aifactoryctl explain [-n NS] NAME [-o table|json]  why each module was chosen or rejected
    aifactoryctl cordon MODULE                         place nothing new there
    aifactoryctl uncordon MODULE                       undo cordon and drain
    aifactoryctl drain MODULE [--wait SECONDS]         cordon, then ask for its replicas to move

Every command accepts `--kubeconfig` and `--context`. `explain` shows what the operator wrote
in status (conditions, placements, unsatisfied replicas, and its per-module explanation), and
re-runs the placement engine against the live fleet for modules status does not cover (status
keeps at most 64) or when the operator has not written one yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import ValidationError

from aifactory.api import (
    API_GROUP,
    API_VERSION,
    AIFactoryModule,
    InferenceDeployment,
    SovereigntyPolicy,
)
from aifactory.labels import DRAIN_ANNOTATION

MODULES = "aifactorymodules"
DEPLOYMENTS = "inferencedeployments"
POLICIES = "sovereigntypolicies"
DRAIN_TIME_ANNOTATION = f"{API_GROUP}/drain-requested-at"
EXPLAIN_SOURCE = "re-evaluated now by the placement engine against the live fleet"


class HubError(RuntimeError):
    """The hub could not be reached or refused a request; the message says which."""


class Hub:
    """The few hub calls the day-2 commands make (tests substitute nothing: they run for real)."""

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config

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

    def list_cluster(self, plural: str) -> list[dict[str, Any]]:
        data = self._call(
            f"list {plural}",
            lambda: self._custom.list_cluster_custom_object(API_GROUP, API_VERSION, plural),
        )
        return list(data.get("items", []))

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

    def patch_module(self, name: str, patch: dict[str, Any]) -> None:
        self._call(
            f"patch aifactorymodule {name}",
            lambda: self._custom.patch_cluster_custom_object(
                API_GROUP, API_VERSION, MODULES, name, patch
            ),
        )

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


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


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

    @property
    def state(self) -> str:
        if self.draining:
            return "Draining"
        return "Schedulable" if self.schedulable else "Cordoned"


def fleet_rows(raw_modules: Sequence[dict[str, Any]], now: datetime) -> list[ModuleRow]:
    rows = []
    for raw in sorted(raw_modules, key=lambda m: m["metadata"]["name"]):
        status = raw.get("status", {}) or {}
        energy = status.get("energy", {}) or {}
        ready = _cond(raw, "Ready")
        annotations = raw["metadata"].get("annotations", {}) or {}
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
                renewable_share=energy.get("renewableShare"),
                carbon_intensity=energy.get(
                    "carbonIntensity", raw["spec"]["energy"].get("carbonIntensity")
                ),
                heartbeat_age=_age(status.get("lastHeartbeatTime"), now),
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
                        "schedulable": r.schedulable,
                        "draining": r.draining,
                        "gpusFree": r.gpus_free,
                        "gpusTotal": r.gpus_total,
                        "renewableShare": r.renewable_share,
                        "carbonIntensity": r.carbon_intensity,
                        "lastHeartbeat": r.heartbeat_age,
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
    table = [
        (
            "MODULE",
            "COUNTRY",
            "READY",
            "STATE",
            "GPUS FREE",
            "GPUS TOTAL",
            "RENEWABLE",
            "CARBON",
            "HEARTBEAT",
        ),
    ]
    for r in rows:
        ready = r.ready if r.ready == "True" else f"{r.ready} ({r.reason})"
        table.append(
            (
                r.name,
                r.country,
                ready,
                r.state,
                _fmt(r.gpus_free),
                _fmt(r.gpus_total),
                _fmt(r.renewable_share),
                _fmt(r.carbon_intensity, 0),
                r.heartbeat_age,
            )
        )
    _table(table, out)
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
    source: str = "engine"  # status: the operator's last decision; engine: re-evaluated now


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
) -> tuple[list[ModuleVerdict], str]:
    """Per-module verdicts from the engine, the deployment's own GPUs counted as free."""
    from aifactory.placement import place_one
    from aifactory.placement.from_api import held_gpus, module_view, policy_view, workload_view

    held = held_gpus(modules, [target])
    views = [module_view(m, held=held.get(m.name), assume_ready=False) for m in modules]
    decision = place_one(
        workload_view(target, namespace_labels.get(target.namespace)),
        views,
        [policy_view(p) for p in policies],
        explain_all=True,
    )
    replicas = {a.module: a.replicas for a in decision.assignments}
    verdicts = []
    for name in sorted(decision.explanation):
        text = decision.explanation[name]
        verdict, _, detail = text.partition(": ")
        verdicts.append(ModuleVerdict(name, verdict, detail, replicas.get(name, 0)))
    return verdicts, decision.message


def run_explain(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    raw = hub.get_deployment(args.namespace, args.name)
    infd = InferenceDeployment.from_manifest(raw)
    modules = [m for r in hub.list_cluster(MODULES) if (m := _parse(AIFactoryModule, r))]
    policies = [p for r in hub.list_cluster(POLICIES) if (p := _parse(SovereigntyPolicy, r))]
    status = raw.get("status", {}) or {}
    fresh, summary = explain_modules(infd, modules, policies, hub.namespace_labels())
    # the operator's decision first; the engine fills in modules status does not cover
    verdicts = status_verdicts(status)
    covered = {v.module for v in verdicts}
    verdicts += [v for v in fresh if v.module not in covered]
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
                    "summary": summary,
                    "modules": [
                        {
                            "module": v.module,
                            "verdict": v.verdict,
                            "replicas": v.replicas,
                            "detail": v.detail,
                            "source": v.source,
                        }
                        for v in verdicts
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        return 0
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
        _table(rows, out)
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
        _table(rows, out)
    unsatisfied = status.get("unsatisfied")
    if unsatisfied:
        out.write(
            f"\nUnsatisfied: {unsatisfied.get('replicas')} replicas: {unsatisfied.get('reason')}\n"
        )
    out.write("\nModules (status: the operator's last decision; engine: " + EXPLAIN_SOURCE + "):\n")
    if summary:
        out.write(f"  {summary.strip()}\n")
    module_rows = [("MODULE", "VERDICT", "REPLICAS", "SOURCE", "WHY")]
    module_rows += [
        (v.module, v.verdict, str(v.replicas) if v.replicas else "-", v.source, v.detail)
        for v in verdicts
    ]
    _table(module_rows, out)
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
        out[f"{meta['namespace']}/{meta['name']}"] = (
            f"{n} replicas have nowhere else to go" + (f": {placed}" if placed else "")
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
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=_guarded(run_fleet))

    p = sub.add_parser(
        "explain",
        help="why each module was chosen or rejected for an InferenceDeployment",
        description="Print the deployment's conditions and placements from status, then the "
        "engine's verdict on every module against the live fleet.",
    )
    _connection(p)
    p.add_argument("name", help="InferenceDeployment name")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
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
