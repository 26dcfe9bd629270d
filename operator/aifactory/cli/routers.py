"""InferenceRouters in `aifactoryctl place` and `explain`: tiers, figures, the what-if.

`place` derives every tier's demand from its router (spec shares and spec demand: offline there
is no live source) before the engine runs, then reports per router the tiers as placed, the
cascade's mean RTT and gCO2e per 1,000 requests, and the same for the largest tier serving the
whole demand alone, placed by its own rules on what the other deployments leave free (the
tiers' own GPUs counted free). `explain infr/NAME` prints a router's status from the hub.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from aifactory.api import InferenceDeployment
from aifactory.placement import Decision, FleetDecision, FleetState, PolicyView, place_against
from aifactory.placement.explain import free_after
from aifactory.placement.from_api import workload_view
from aifactory.placement.priority import PriorityClassView
from aifactory.routers.figures import (
    Figures,
    blend,
    decision_figures,
    largest_tier_what_if,
)
from aifactory.routers.tiers import TierPlan

WIDTH = 100


@dataclass(frozen=True)
class TierReport:
    deployment: str
    share: float
    requests_per_second: float
    decision: Decision | None
    figures: Figures | None


@dataclass(frozen=True)
class RouterReport:
    """One router as placed: its tiers, the cascade, the largest tier alone (what-if)."""

    router: str
    tiers: tuple[TierReport, ...]
    cascade: Figures | None
    largest: str
    largest_alone: Figures | None
    largest_alone_decision: Decision | None = None
    problems: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: router, tiers[], cascade, largestTier (the what-if), problems."""

        def fig(f: Figures | None) -> dict[str, Any] | None:
            return f.to_dict() if f else None

        return {
            "router": self.router,
            "tiers": [
                {
                    "deployment": t.deployment,
                    "share": round(t.share, 6),
                    "requestsPerSecond": round(t.requests_per_second, 3),
                    "replicas": t.decision.replicas if t.decision else None,
                    "placedReplicas": t.decision.placed_replicas if t.decision else None,
                    "modules": {a.module: a.replicas for a in t.decision.assignments}
                    if t.decision
                    else {},
                    "figures": fig(t.figures),
                }
                for t in self.tiers
            ],
            "cascade": fig(self.cascade),
            "largestTier": {
                "deployment": self.largest,
                "figures": fig(self.largest_alone),
                "modules": {a.module: a.replicas for a in self.largest_alone_decision.assignments}
                if self.largest_alone_decision
                else {},
            },
            "problems": dict(self.problems),
        }


def router_reports(
    plan: TierPlan,
    raw: Sequence[InferenceDeployment],
    fleet: FleetState,
    policies: Sequence[PolicyView],
    result: FleetDecision,
    namespace_labels: Mapping[str, Mapping[str, str]],
    priority_classes: Sequence[PriorityClassView] = (),
) -> tuple[RouterReport, ...]:
    """Every router's report from a placement of the derived deployments."""
    by_ref = {d.ref: d for d in raw}
    decisions = {d.deployment: d for d in result.placements}
    out = []
    for ref, view in sorted(plan.routers.items()):
        router = view.router
        tier_refs = {router.tier_ref(t) for t in router.spec.tiers}
        tiers = []
        for t in router.spec.tiers:
            tref = router.tier_ref(t)
            share = view.shares.values[t.deployment]
            demand = {r: view.rps[r] * share for r in view.rps}
            d = decisions.get(tref) if t.deployment not in view.problems else None
            tiers.append(
                TierReport(
                    t.deployment,
                    share,
                    sum(demand.values()),
                    d,
                    decision_figures(fleet, d, demand) if d else None,
                )
            )
        placed = [t.figures for t in tiers if t.figures is not None]
        largest = router.spec.largest
        alone: Figures | None = None
        alone_decision: Decision | None = None
        raw_largest = by_ref.get(router.tier_ref(largest))
        if raw_largest is not None and largest.deployment not in view.problems:
            others = [d for d in result.placements if d.deployment not in tier_refs]
            pool_free, power_free = free_after(fleet, others)
            wl = workload_view(
                largest_tier_what_if(view, raw_largest),
                namespace_labels.get(raw_largest.namespace),
                priority_classes=priority_classes,
            )
            alone_decision, _ = place_against(fleet, wl, policies, pool_free, power_free)
            alone = decision_figures(fleet, alone_decision, dict(view.rps))
        out.append(
            RouterReport(
                router=ref,
                tiers=tuple(tiers),
                cascade=blend(placed) if placed else None,
                largest=largest.deployment,
                largest_alone=alone,
                largest_alone_decision=alone_decision,
                problems={k: p.message for k, p in view.problems.items()},
            )
        )
    return tuple(out)


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def comparison(r: RouterReport) -> str | None:
    """One sentence: the cascade against the largest tier alone."""
    c, a = r.cascade, r.largest_alone
    if c is None or a is None:
        return None
    parts = []
    if c.mean_rtt_ms is not None and a.mean_rtt_ms is not None:
        parts.append(f"mean RTT {c.mean_rtt_ms:.1f} ms vs {a.mean_rtt_ms:.1f} ms")
    ck, ak = c.grams_per_1000_requests, a.grams_per_1000_requests
    if ck is not None and ak is not None:
        change = f" ({(ck / ak - 1) * 100:+.0f}%)" if ak > 0 else ""
        parts.append(f"{ck:.3f} vs {ak:.3f} gCO2e per 1,000 requests{change}")
    if not parts:
        return None
    return f"{r.router}: the cascade against serving everything with {r.largest}: " + "; ".join(
        parts
    )


def render_routers(reports: Sequence[RouterReport], out: TextIO) -> None:
    """The routers' table: tiers as placed, the cascade, the largest tier alone (what-if)."""
    if not reports:
        return
    rows = [["ROUTER", "TIER", "SHARE", "RPS", "PLACED", "MODULES", "MEAN RTT", "gCO2e/1k"]]
    for r in reports:
        first = True
        for t in r.tiers:
            d = t.decision
            rows.append(
                [
                    r.router if first else "",
                    t.deployment,
                    f"{t.share:g}",
                    f"{t.requests_per_second:g}",
                    f"{d.placed_replicas}/{d.replicas}" if d else "-",
                    ",".join(f"{a.module}={a.replicas}" for a in d.assignments) if d else "-",
                    _num(t.figures.mean_rtt_ms if t.figures else None, 1),
                    _num(t.figures.grams_per_1000_requests if t.figures else None, 3),
                ]
            )
            first = False
        if r.cascade is not None:
            rows.append(
                [
                    "",
                    "cascade",
                    "1",
                    f"{r.cascade.requests_per_second:g}",
                    "",
                    "",
                    _num(r.cascade.mean_rtt_ms, 1),
                    _num(r.cascade.grams_per_1000_requests, 3),
                ]
            )
        if r.largest_alone is not None:
            d = r.largest_alone_decision
            rows.append(
                [
                    "",
                    f"{r.largest} alone",
                    "1",
                    f"{r.largest_alone.requests_per_second:g}",
                    f"{d.placed_replicas}/{d.replicas}" if d else "-",
                    ",".join(f"{a.module}={a.replicas}" for a in d.assignments) if d else "-",
                    _num(r.largest_alone.mean_rtt_ms, 1),
                    _num(r.largest_alone.grams_per_1000_requests, 3),
                ]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out.write("\n")
    for row in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        out.write(line.rstrip() + "\n")
    for r in reports:
        sentence = comparison(r)
        if sentence:
            out.write(textwrap.fill(sentence, WIDTH, subsequent_indent="  ") + "\n")
        if r.largest_alone is not None:
            out.write(
                textwrap.fill(
                    f"  ({r.largest} alone: a what-if, placed by its own rules on what the "
                    "other deployments leave free)",
                    WIDTH,
                    subsequent_indent="   ",
                )
                + "\n"
            )
        for tier, why in sorted(r.problems.items()):
            out.write(textwrap.fill(f"  {tier}: {why}", WIDTH, subsequent_indent="    ") + "\n")


# ---------------------------------------------------------------------------------- explain

#: What `aifactoryctl explain KIND/NAME` accepts for a router (as kubectl spells kinds).
ROUTER_KINDS = ("infr", "inferencerouter", "inferencerouters")


def _rows(rows: Sequence[Sequence[str]], out: TextIO, indent: str = "") -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        out.write((indent + line).rstrip() + "\n")


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def explain_router(
    router: Mapping[str, Any],
    tiers: Mapping[str, Mapping[str, Any] | None],
    out: TextIO,
) -> None:
    """A router's tiers, shares, routing and figures from status; `tiers`: tier name -> the
    InferenceDeployment as the hub has it (None: not found)."""
    meta, spec = router.get("metadata", {}), router.get("spec", {})
    status = router.get("status") or {}
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    out.write(f"InferenceRouter {ref}\n")
    out.write(
        f"  generation {meta.get('generation')}, observed by the operator: "
        f"{_f(status.get('observedGeneration'))}\n"
    )
    tier_rows = {t.get("deployment"): t for t in status.get("tiers") or []}
    shares = ", ".join(
        f"{t['deployment']}={_f(tier_rows.get(t['deployment'], {}).get('share', t['share']), 4)} "
        f"({tier_rows.get(t['deployment'], {}).get('shareSource') or 'spec'})"
        for t in spec.get("tiers", [])
    )
    out.write(textwrap.fill(f"  shares: {shares}", WIDTH, subsequent_indent="    ") + "\n\n")
    conditions = status.get("conditions") or []
    if conditions:
        out.write("Conditions (from status):\n")
        _rows(
            [("TYPE", "STATUS", "REASON", "MESSAGE")]
            + [
                (c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
                for c in conditions
            ],
            out,
        )
    else:
        out.write("Conditions: none yet (the operator has not reconciled it)\n")
    out.write("\nTiers (smallest first; the last one is the largest):\n")
    rows = [("TIER", "SHARE", "RPS", "REPLICAS", "READY", "MODULES", "MEAN RTT", "gCO2e/1k REQ")]
    for t in spec.get("tiers", []):
        name = t["deployment"]
        row = tier_rows.get(name, {})
        infd = tiers.get(name)
        placements = ((infd or {}).get("status") or {}).get("placements") or []
        modules = ",".join(f"{p['module']}={p.get('replicas', 0)}" for p in placements) or "-"
        rows.append(
            (
                name,
                _f(row.get("share", t["share"]), 4),
                _f(row.get("requestsPerSecond")),
                _f(row.get("replicas")),
                _f(row.get("readyReplicas")),
                modules if infd is not None else "(not found)",
                _f(row.get("meanRttMs"), 1),
                _f(row.get("gramsPer1000Requests"), 3),
            )
        )
    _rows(rows, out)
    for t in spec.get("tiers", []):
        row = tier_rows.get(t["deployment"], {})
        if row.get("message"):
            out.write(
                textwrap.fill(
                    f"  {t['deployment']}: {row['message']}", WIDTH, subsequent_indent="    "
                )
                + "\n"
            )
        infd = tiers.get(t["deployment"])
        effective = ((infd or {}).get("status") or {}).get("effectiveDemand")
        if effective:
            rps = ", ".join(
                f"{k}={_f(v)}" for k, v in (effective.get("requestsPerSecond") or {}).items()
            )
            out.write(
                textwrap.fill(
                    f"  {t['deployment']}: placed for {rps} requests/s (status.effectiveDemand, "
                    f"headroom {_f(effective.get('headroom'))}); its modules: `aifactoryctl "
                    f"explain -n {meta.get('namespace')} {t['deployment']}`",
                    WIDTH,
                    subsequent_indent="    ",
                )
                + "\n"
            )
    routing = status.get("routing") or []
    if routing:
        out.write("\nRouting (Ready replicas only; weights move once new replicas are Ready):\n")
        routes: list[tuple[str, ...]] = [
            ("REGION", "RPS", "TIER", "MODULES (weight)", "LATENCY (ms)")
        ]
        for r in routing:
            first = True
            for t in r.get("tiers") or []:
                mods = ",".join(
                    f"{m['module']}={_f(m['weight'], 4)}" for m in t.get("modules") or []
                )
                routes.append(
                    (
                        r["region"] if first else "",
                        _f(r.get("requestsPerSecond")) if first else "",
                        t["deployment"],
                        mods or "(no Ready replica yet)",
                        _f(t.get("latencyMs"), 1),
                    )
                )
                first = False
        _rows(routes, out)
    blended = status.get("blended") or {}
    cascade, alone = blended.get("cascade") or {}, blended.get("largestTier") or {}
    if cascade:
        out.write(
            f"\nCascade: mean RTT {_f(cascade.get('meanRttMs'), 1)} ms, "
            f"{_f(cascade.get('gramsPer1000Requests'), 3)} gCO2e per 1,000 requests, "
            f"{_f(cascade.get('gramsPerHour'), 0)} gCO2e/h\n"
        )
    if alone:
        out.write(
            f"{alone.get('deployment')} alone (what-if): mean RTT {_f(alone.get('meanRttMs'), 1)} "
            f"ms, {_f(alone.get('gramsPer1000Requests'), 3)} gCO2e per 1,000 requests, "
            f"{_f(alone.get('gramsPerHour'), 0)} gCO2e/h\n"
        )


__all__ = [
    "ROUTER_KINDS",
    "RouterReport",
    "TierReport",
    "comparison",
    "explain_router",
    "render_routers",
    "router_reports",
]
