"""Where each data classification ran, by country, over a period: from the records. Pure.

Each record says what a deployment ran after a change (replicas per module, each module's
country when it was decided); that placement holds until the deployment's next record (or
until now). Summing replicas x hours per (classification, country) over the period answers an
auditor's "where was restricted data processed last month?". A deployment whose oldest
retained record is inside the period is counted from that record on (what ran before it is
the record's `before`, but not since when).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aifactory.audit.chain import parse_time


@dataclass
class Row:
    classification: str
    country: str
    replica_hours: float = 0.0
    deployments: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)

    def to_dict(self, total: float) -> dict[str, Any]:
        return {
            "dataClassification": self.classification,
            "country": self.country,
            "replicaHours": round(self.replica_hours, 3),
            "share": round(self.replica_hours / total, 4) if total > 0 else 0.0,
            "deployments": sorted(self.deployments),
            "modules": sorted(self.modules),
        }


def where_ran(
    records: Iterable[Mapping[str, Any]], since: datetime, now: datetime
) -> tuple[list[Row], list[str]]:
    """Rows sorted by classification, then replica-hours (largest first); and notes."""
    by_deployment: dict[str, list[Mapping[str, Any]]] = {}
    for obj in records:
        spec = obj.get("spec") or {}
        dep = spec.get("deployment") or {}
        key = f"{dep.get('namespace')}/{dep.get('name')}#{dep.get('uid') or ''}"
        by_deployment.setdefault(key, []).append(spec)
    rows: dict[tuple[str, str], Row] = {}
    notes: list[str] = []
    late: list[str] = []
    for key, specs in sorted(by_deployment.items()):
        specs.sort(key=lambda s: int(s.get("sequence") or 0))
        ref = key.split("#", 1)[0]
        times = [parse_time(str(s.get("time", ""))) for s in specs]
        first_in = next((t for t in times if t is not None), None)
        if first_in is not None and first_in > since and specs[0].get("reason") != "Placed":
            late.append(ref)
        for i, spec in enumerate(specs):
            start = times[i]
            if start is None:
                continue
            end = next((t for t in times[i + 1 :] if t is not None), now)
            lo, hi = max(start, since), min(end, now)
            hours = (hi - lo).total_seconds() / 3600.0
            if hours <= 0:
                continue
            countries = {
                m.get("name"): m.get("country") or "unknown" for m in spec.get("modules") or []
            }
            classification = (spec.get("deployment") or {}).get("dataClassification") or "unknown"
            for cell in spec.get("after") or []:
                module = cell.get("module")
                country = countries.get(module, "unknown")
                row = rows.setdefault((classification, country), Row(classification, country))
                row.replica_hours += int(cell.get("replicas") or 0) * hours
                row.deployments.add(ref)
                row.modules.add(str(module))
    if late:
        notes.append(
            "counted from their oldest retained record (inside the period): " + ", ".join(late)
        )
    out = sorted(rows.values(), key=lambda r: (r.classification, -r.replica_hours, r.country))
    return out, notes


__all__ = ["Row", "where_ran"]
