"""`aifactoryctl explain`: the operator's decision from status, checked live by the engine.

Pure: takes the hub objects already read and returns a report. Every fact says where it came
from (its source):

* ``status``: what the operator wrote in the InferenceDeployment's status (its decision and
  its per-module explanation at decision time);
* ``live``: re-evaluated now by the placement engine, on the hub's modules (their status:
  readiness, discovered GPUs, energy), the bound policies, and the GPUs every other
  InferenceDeployment's status holds;
* ``model`` / ``measured``: an RTT from the brief's model or from a measured RTT table;
* ``spec`` / ``schedule`` / ``feed NAME``: where a module's carbon intensity came from
  (status.energy.source; a feed names its provider).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.placement import (
    Assignment,
    Decision,
    FleetState,
    PlacementSettings,
)
from aifactory.placement.assignment import solve_one
from aifactory.placement.cycle import prepare
from aifactory.placement.explain import (
    alloc_of,
    availability_message,
    explain_modules,
    free_after,
    holders_of,
    pool_of,
    region_exclusions,
    score_terms,
    shortfalls,
)
from aifactory.placement.from_api import held_gpus, module_view, policy_view, workload_view
from aifactory.placement.priority import PriorityClassView, UnknownPriorityClassError
from aifactory.placement.rtt import MEASURED
from aifactory.placement.state import FleetState as _FleetState
from aifactory.placement.state import WorkloadState

#: SOURCE values, in the order the legend lists them.
SOURCES = {
    "status": "the operator's decision, from the InferenceDeployment's status",
    "live": "re-evaluated now by the placement engine against the hub's modules, policies and "
    "the GPUs the other deployments hold",
}


def energy_source(module: AIFactoryModule) -> str:
    """Where the carbon intensity placement uses came from."""
    e = module.status.energy if module.status else None
    if e is None or e.source in (None, "spec"):
        return "spec"
    if e.source == "schedule":
        return "schedule"
    if e.source == "signal":
        return f"feed {e.provider}" if e.provider else "feed"
    return f"feed {e.source}"


@dataclass
class ModuleReport:
    """Everything `explain` says about one module."""

    module: str
    verdict: str
    replicas: int
    #: Where the verdict came from: status or live.
    source: str
    #: The verdict's text after "verdict: " (the operator's, or the live one).
    detail: str
    live_verdict: str = ""
    live_detail: str = ""
    #: Per region: cost and its terms, each with its source.
    costs: list[dict[str, Any]] = field(default_factory=list)
    #: Why a rule excludes it (rejected), or some regions (cannot serve).
    rules: list[str] = field(default_factory=list)
    #: Why it got fewer replicas than it could (explain.shortfalls), computed live.
    fewer: list[str] = field(default_factory=list)
    #: GPU pools: "H100 10/32 in use".
    gpus: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "verdict": self.verdict,
            "replicas": self.replicas,
            "detail": self.detail,
            "source": self.source,
            "live": {"verdict": self.live_verdict, "detail": self.live_detail},
            "costs": self.costs,
            "rules": self.rules,
            "fewer": self.fewer,
            "gpus": self.gpus,
        }


@dataclass
class LiveView:
    """The engine's re-evaluation of the running placement."""

    summary: str
    #: The operator's keep-or-move rule applied now (hysteresis), e.g. "kept: ...".
    stability: str
    #: module -> replicas a fresh placement would use now (the rebalancer's direction).
    fresh: dict[str, int]
    modules: dict[str, ModuleReport]
    hysteresis: float


def _status_decision(d: InferenceDeployment, held: Mapping[str, Mapping[str, int]]) -> Decision:
    """A deployment's status placements as a Decision (the GPUs it holds, per pool)."""
    assignments = []
    for p in d.status.placements if d.status else []:
        if p.replicas <= 0:
            continue
        assignments.append(
            Assignment(
                module=p.module,
                replicas=p.replicas,
                regions=dict(p.regions),
                gpus=dict(held.get(p.module, {})),
            )
        )
    total = sum(a.replicas for a in assignments)
    return Decision(d.ref, total, 0, tuple(assignments), {}, 0.0)


def _costs(
    fleet: FleetState, ws: WorkloadState, i: int, regions: Sequence[int], carbon_source: str
) -> list[dict[str, Any]]:
    out = []
    for r in regions:
        terms = {t.name: t for t in score_terms(fleet, ws, r, i)}
        lat = terms.get("Latency")
        carbon = terms["Carbon"]
        rel = terms.get("Reliability")
        out.append(
            {
                "region": ws.region_names[r],
                "cost": round(sum(t.weighted for t in terms.values()), 6),
                "latencyMs": None if lat is None else round(lat.raw, 3),
                "latencySource": None
                if lat is None
                else ("measured" if lat.source == MEASURED else "model"),
                "latencyCost": None if lat is None else round(lat.weighted, 6),
                "carbonIntensity": round(float(fleet.carbon[i]), 3),
                "pue": round(float(fleet.pue[i]), 3),
                "carbonSource": carbon_source,
                "carbonCost": round(carbon.weighted, 6),
                **(
                    {}
                    if rel is None
                    else {
                        "readyFraction": round(float(fleet.reliability[i]), 6),
                        "reliabilityCost": round(rel.weighted, 6),
                    }
                ),
                "scores": {name: round(t.normalized, 1) for name, t in terms.items()},
            }
        )
    return out


def cost_line(c: Mapping[str, Any]) -> str:
    """One region's cost and its terms, each with its source, e.g.
    "eu-north: cost 0.257 = latency 7.5 ms (model) 0.188 + carbon 30 x PUE 1.15 (spec) 0.069"."""
    head = f"{c['region']}: cost" if c["region"] else "cost"
    parts = []
    if c["latencyMs"] is not None:
        parts.append(
            f"latency {c['latencyMs']:.1f} ms ({c['latencySource']}) {c['latencyCost']:.3f}"
        )
    parts.append(
        f"carbon {c['carbonIntensity']:.0f} x PUE {c['pue']:.2f} ({c['carbonSource']}) "
        f"{c['carbonCost']:.3f}"
    )
    if c.get("reliabilityCost") is not None:
        parts.append(f"reliability {c['readyFraction']:.2%} Ready {c['reliabilityCost']:.3f}")
    return f"{head} {c['cost']:.3f} = " + " + ".join(parts)


def live_view(
    target: InferenceDeployment,
    modules: Sequence[AIFactoryModule],
    deployments: Sequence[InferenceDeployment],
    policies: Sequence[SovereigntyPolicy],
    namespace_labels: Mapping[str, Mapping[str, str]],
    *,
    priority_classes: Sequence[PriorityClassView] = (),
    settings: PlacementSettings | None = None,
) -> LiveView:
    """Re-evaluate the target's running placement with the engine, on the hub as it is now.

    Capacity: each module's discovered GPUs minus other tenants' pods, minus the GPUs every
    other InferenceDeployment's status holds. The target's own GPUs count as free for it, as
    they do when the operator places it again.
    """
    settings = settings or PlacementSettings()
    others = [d for d in deployments if d.ref != target.ref]
    everyone = [*others, target]
    held_all = held_gpus(modules, everyone)
    views = [module_view(m, held=held_all.get(m.name), assume_ready=False) for m in modules]
    fleet: _FleetState = FleetState(views, settings)
    by_name = {m.name: m for m in modules}
    decisions = {d.ref: _status_decision(d, held_gpus(modules, [d])) for d in everyone}
    pf_all, pw_all = free_after(fleet, decisions.values())
    pf_others, pw_others = free_after(fleet, [decisions[d.ref] for d in others])
    try:
        wl = workload_view(
            target, namespace_labels.get(target.namespace), priority_classes=priority_classes
        )
    except UnknownPriorityClassError:
        wl = workload_view(target, namespace_labels.get(target.namespace))
    pols = tuple(policy_view(p) for p in policies)
    ws = prepare(fleet, wl, pols, pool_free=pf_others, power_free_w=pw_others)
    alloc = alloc_of(fleet, ws, decisions[target.ref])
    texts = explain_modules(fleet, ws, alloc, full=True)
    fresh = solve_one(fleet, ws, pf_others.copy(), pw_others.copy())
    fresh_modules: dict[str, int] = {}
    for (_, m), k in fresh.alloc.items():
        fresh_modules[fleet.names[m]] = fresh_modules.get(fleet.names[m], 0) + k
    stability = fresh.stability
    fewer = shortfalls(
        fleet,
        ws,
        alloc,
        pf_all,
        pw_all,
        holders=holders_of(decisions.values()),
        stability=stability,
    )
    served: dict[int, list[int]] = {}
    for (r, m), k in alloc.items():
        if k > 0:
            served.setdefault(m, []).append(r)
    reports: dict[str, ModuleReport] = {}
    for name, text in texts.items():
        i = fleet.index[name]
        verdict, _, detail = text.partition(": ")
        regions = sorted(served.get(i, [])) or [
            int(r) for r in range(len(ws.region_names)) if ws.feasible[r, i]
        ]
        costs = (
            _costs(fleet, ws, i, regions, energy_source(by_name[name]))
            if verdict != "rejected"
            else []
        )
        rules = detail.split("; ") if verdict == "rejected" else []
        excluded = region_exclusions(ws, i) if verdict != "rejected" else []
        if excluded:
            rules.append("cannot serve: " + "; ".join(excluded))
        gpus = []
        for pool in fleet.modules[i].pools:
            p = pool_of(fleet, name, pool.model)
            if p is not None:
                gpus.append(f"{pool.model} {pool.count - int(pf_all[p])}/{pool.count} in use")
        reports[name] = ModuleReport(
            module=name,
            verdict=verdict,
            replicas=sum(k for (_, m), k in alloc.items() if m == i),
            source="live",
            detail=detail,
            live_verdict=verdict,
            live_detail=detail,
            costs=costs,
            rules=rules,
            fewer=fewer.get(name, []),
            gpus=gpus,
        )
    return LiveView(
        summary=availability_message(fleet, ws),
        stability=stability,
        fresh=dict(sorted(fresh_modules.items())),
        modules=reports,
        hysteresis=settings.hysteresis,
    )


def merge_status(live: LiveView, status: Mapping[str, Any]) -> list[ModuleReport]:
    """Per module: the operator's verdict from status.explanation where it has one (source
    status), else the live one (source live); the live re-evaluation is kept alongside."""
    replicas = {p["module"]: int(p.get("replicas", 0)) for p in status.get("placements") or []}
    out = []
    explained = status.get("explanation") or {}
    for name in sorted(set(live.modules) | set(explained)):
        report = live.modules.get(name) or ModuleReport(name, "", 0, "status", "")
        if name in explained:
            verdict, _, detail = str(explained[name]).partition(": ")
            report.verdict, report.detail, report.source = verdict, detail, "status"
            report.replicas = replicas.get(name, 0)
            if verdict == "rejected":
                report.rules = detail.split("; ")
        out.append(report)
    return out


__all__ = [
    "SOURCES",
    "LiveView",
    "ModuleReport",
    "cost_line",
    "energy_source",
    "live_view",
    "merge_status",
]
