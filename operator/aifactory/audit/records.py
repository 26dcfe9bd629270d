"""What one placement change records: the body of a PlacementRecord, from plain data. Pure.

The placement loop hands over what it decided (cells before and after, what the planner removed
and moved and why, the engine's per-term costs and what it saw); this module names the reason
and shapes the body. Hashing, chaining, signing and writing happen later, in the record
keeper's own thread (`keeper.py`), so placement never waits for any of it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aifactory.audit.chain import digest

#: (region, module) -> replicas; region "" for a deployment without demand regions.
Cells = Mapping[tuple[str, str], int]

# Reasons, stable CamelCase, most specific first (the first that applies names the record).
PLACED = "Placed"
SCALED = "Scaled"
RESCHEDULED = "Rescheduled"
REBALANCED = "Rebalanced"
FAILOVER = "Failover"
MODULE_REMOVED = "ModuleRemoved"
DRAINED = "Drained"
COMPLIANCE_REMOVAL = "ComplianceRemoval"
PREEMPTED = "Preempted"
SLO_BREACH = "SLOBreach"
DELETED = "Deleted"
REASONS = (
    PLACED,
    SCALED,
    RESCHEDULED,
    REBALANCED,
    FAILOVER,
    MODULE_REMOVED,
    DRAINED,
    COMPLIANCE_REMOVAL,
    PREEMPTED,
    SLO_BREACH,
    DELETED,
)

#: Longest message kept in a record.
MAX_MESSAGE = 1024


def iso(t: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: records decided within one second stay ordered."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Change:
    """How the planner got from before to after.

    `removed`: (region, module, replicas, why) removed at once; `moves`: (region, from, to,
    replicas) voluntary moves; `rebalanced`: the moves were a step towards the rebalancer's
    fleet plan; `draining`: modules asked to give up every replica; `slo_excluded`:
    (region, module) pairs out of the SLO by measured latency.
    """

    removed: tuple[tuple[str, str, int, str], ...] = ()
    moves: tuple[tuple[str, str, str, int], ...] = ()
    rebalanced: bool = False
    draining: frozenset[str] = frozenset()
    slo_excluded: frozenset[tuple[str, str]] = frozenset()


def per_module(cells: Cells) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_, m), k in cells.items():
        if k > 0:
            out[m] = out.get(m, 0) + k
    return out


def classify(before: Cells, after: Cells, change: Change) -> tuple[str, tuple[str, ...]]:
    """The record's reason, and the modules a failover left (they caused it)."""
    whys = [why for *_, why in change.removed]
    failed = tuple(sorted({m for _, m, _, why in change.removed if " is unusable" in why}))
    if any(w.startswith("an Enforce policy") for w in whys):
        return COMPLIANCE_REMOVAL, failed
    if any(w.startswith("preempted by") for w in whys):
        return PREEMPTED, failed
    if failed:
        return FAILOVER, failed
    if any(" is gone" in w for w in whys):
        return MODULE_REMOVED, failed
    if change.moves:
        if any(src in change.draining for _, src, _, _ in change.moves):
            return DRAINED, failed
        if any((r, src) in change.slo_excluded for r, src, _, _ in change.moves):
            return SLO_BREACH, failed
        return (REBALANCED if change.rebalanced else RESCHEDULED), failed
    b, a = per_module(before), per_module(after)
    if not b:
        return PLACED, failed
    if set(b) != set(a):
        return RESCHEDULED, failed
    return SCALED, failed


def cells_list(cells: Cells) -> list[dict[str, Any]]:
    return [
        {"module": m, "region": r, "replicas": int(k)}
        for (r, m), k in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        if k > 0
    ]


def summary(cells: Cells) -> str:
    return ",".join(f"{m}={k}" for m, k in sorted(per_module(cells).items())) or "nothing"


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass(frozen=True, slots=True)
class CostTerms:
    """The engine's per-replica cost terms of one placement, summed."""

    latency: float = 0.0
    carbon: float = 0.0
    reliability: float = 0.0

    @property
    def total(self) -> float:
        return self.latency + self.carbon + self.reliability


@dataclass(frozen=True, slots=True)
class ModuleFacts:
    """What the decision knew about one module."""

    name: str
    country: str | None = None
    ready: bool | None = None
    carbon_intensity: float | None = None
    renewable_share: float | None = None
    ready_fraction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "country": self.country,
            "ready": self.ready,
            "carbonIntensity": _r(self.carbon_intensity, 3),
            "renewableShare": _r(self.renewable_share, 4),
            "readyFraction": _r(self.ready_fraction, 6),
        }


@dataclass(frozen=True)
class RecordDraft:
    """A record before it joins the chain: the keeper adds sequence, link, hash, signature.

    The reason, the failed modules and the labels are decided when the draft is made; the body
    is shaped on first use (`body`), which is in the record keeper's thread, so the placement
    loop only gathers the facts.
    """

    ref: str
    reason: str
    at: datetime
    #: Modules whose loss caused this change (reliability: failovers caused).
    failover_modules: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        return _body(reason=self.reason, now=self.at, **self.facts)


def build(
    *,
    namespace: str,
    name: str,
    uid: str | None,
    generation: int | None,
    data_classification: str | None,
    before: Cells,
    after: Cells,
    change: Change,
    now: datetime,
    message: str = "",
    cost_after: CostTerms | None = None,
    cost_before: CostTerms | None = None,
    unplaced: int | None = None,
    modules: Iterable[ModuleFacts] = (),
    modules_digest: str | None = None,
    policies: Sequence[tuple[str, str | None, str]] = (),
    demand: Mapping[str, float] | None = None,
    fleet_plan: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> RecordDraft:
    """The draft record of one change (`reason` overrides the classification, e.g. Deleted).

    The arguments are kept as they are (the caller hands over values it no longer changes);
    the body is shaped later, off the placement path."""
    named, failed = classify(before, after, change)
    reason = reason or named
    labels = {"aifactory.dev/reason": reason}
    if len(namespace) <= 63:
        labels["aifactory.dev/namespace"] = namespace
    if len(name) <= 63:
        labels["aifactory.dev/inference-deployment"] = name
    return RecordDraft(
        ref=f"{namespace}/{name}",
        reason=reason,
        at=now,
        failover_modules=failed if reason == FAILOVER else (),
        labels=labels,
        facts={
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "generation": generation,
            "data_classification": data_classification,
            "before": before,
            "after": after,
            "message": message,
            "cost_after": cost_after,
            "cost_before": cost_before,
            "unplaced": unplaced,
            "modules": tuple(modules),
            "modules_digest": modules_digest,
            "policies": tuple(policies),
            "demand": demand,
            "fleet_plan": fleet_plan,
        },
    )


def _body(
    *,
    reason: str,
    now: datetime,
    namespace: str,
    name: str,
    uid: str | None,
    generation: int | None,
    data_classification: str | None,
    before: Cells,
    after: Cells,
    message: str,
    cost_after: CostTerms | None,
    cost_before: CostTerms | None,
    unplaced: int | None,
    modules: Sequence[ModuleFacts],
    modules_digest: str | None,
    policies: Sequence[tuple[str, str | None, str]],
    demand: Mapping[str, float] | None,
    fleet_plan: Mapping[str, Any] | None,
) -> dict[str, Any]:
    text = message or f"{summary(before)} -> {summary(after)}"
    policy_list = [
        {"name": n, "resourceVersion": rv, "enforcement": e} for n, rv, e in sorted(policies)
    ]
    demand_map = {k: _r(v, 6) for k, v in sorted((demand or {}).items())}
    body: dict[str, Any] = {
        "time": iso(now),
        "deployment": {
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "generation": generation,
            "dataClassification": data_classification,
        },
        "reason": reason,
        "message": text[:MAX_MESSAGE],
        "before": cells_list(before),
        "after": cells_list(after),
        "modules": [m.to_dict() for m in sorted(modules, key=lambda m: m.name)],
        "policies": policy_list,
        "demand": demand_map,
        # the policies' and demand's digests are added by `complete`, in the keeper's thread
        "inputs": {"modules": modules_digest},
    }
    if cost_after is not None:
        body["cost"] = {
            "total": _r(cost_after.total),
            "latency": _r(cost_after.latency),
            "carbon": _r(cost_after.carbon),
            "reliability": _r(cost_after.reliability),
            "previousTotal": _r(cost_before.total) if cost_before is not None else None,
            "unplacedReplicas": unplaced,
        }
    if fleet_plan:
        body["fleetPlan"] = dict(fleet_plan)
    return body


def complete(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with the digests of the policies and demand it holds (the record keeper calls
    this off the placement path, just before sealing)."""
    out = dict(body)
    inputs = dict(out.get("inputs") or {})
    inputs.setdefault("policies", digest(out.get("policies") or []))
    inputs.setdefault("demand", digest(out.get("demand") or {}))
    out["inputs"] = inputs
    return out


__all__ = [
    "COMPLIANCE_REMOVAL",
    "DELETED",
    "DRAINED",
    "FAILOVER",
    "MODULE_REMOVED",
    "PLACED",
    "PREEMPTED",
    "REASONS",
    "REBALANCED",
    "RESCHEDULED",
    "SCALED",
    "SLO_BREACH",
    "Change",
    "CostTerms",
    "ModuleFacts",
    "RecordDraft",
    "build",
    "cells_list",
    "classify",
    "complete",
    "iso",
    "summary",
]
