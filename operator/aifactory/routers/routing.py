"""Where a router sends each region's requests for each tier: Ready replicas only. Pure.

Routing follows make-before-break: a weight moves to a module only once replicas there are
Ready, and a module the placement is leaving keeps its weight while its replicas still serve.
So weights come from what members report Ready, attributed to regions this way:

* a module in the tier's placements: its Ready replicas split over the regions its placement
  serves there, in proportion;
* a module no longer in the placements but still serving (held until its replacements are
  Ready): the regions the router last routed to it, equally;
* never a (region, module) a bound Enforce policy forbids, whatever runs there (compliance wins
  over make-before-break, as in the planner).

A region whose tier has no Ready replica anywhere gets no route (the status says so).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from aifactory.api import ModulePlacement

from .figures import Weights


def ready_routing(
    regions: Sequence[str],
    placements: Sequence[ModulePlacement],
    ready: Mapping[str, int],
    previous: Weights | None = None,
    forbidden: Collection[tuple[str, str]] = (),
) -> dict[str, dict[str, float]]:
    """region -> module -> weight (summing to 1 per region with routes).

    `ready`: module -> Ready replicas of the tier as the members report them; `previous`: the
    routing last published (for modules being left); `forbidden`: (region, module) pairs.
    """
    previous = previous or {}
    placed = {p.module: p for p in placements}
    counts: dict[str, dict[str, float]] = {r: {} for r in regions}
    for module, n in sorted(ready.items()):
        if n <= 0:
            continue
        p = placed.get(module)
        served = {r: k for r, k in (p.regions if p else {}).items() if k > 0 and r in counts}
        if served:
            total_served = sum(served.values())
            share = {r: n * k / total_served for r, k in served.items()}
        else:
            before = sorted(r for r, mods in previous.items() if mods.get(module, 0) > 0)
            before = [r for r in before if r in counts]
            share = {r: n / len(before) for r in before} if before else {}
        for r, v in share.items():
            if v > 0 and (r, module) not in forbidden:
                counts[r][module] = counts[r].get(module, 0.0) + v
    out: dict[str, dict[str, float]] = {}
    for r in regions:
        total = sum(counts[r].values())
        if total > 0:
            out[r] = {m: round(v / total, 4) for m, v in sorted(counts[r].items())}
    return out


__all__ = ["ready_routing"]
