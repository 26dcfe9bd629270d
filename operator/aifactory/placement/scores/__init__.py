"""Score terms, one per file. Each gives a raw value, its 0-100 normalisation and its weighted
contribution to the brief's cost, so explanations can show the breakdown.

Cost of one replica serving region r on module m is the sum of the weighted terms:
latencyWeight * RTT(r,m) / L + carbonWeight * carbonIntensity(m) * pue(m) / 500, plus
reliabilityWeight * (1 - readyFraction(m)) / 0.01 when a deployment sets that weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from aifactory.placement.scores import carbon, latency, reliability


@dataclass(frozen=True, slots=True)
class ScoreTerm:
    """One term of one (region, module) score, as an explanation shows it."""

    name: str
    raw: float
    unit: str
    #: 100 is best, 0 at or beyond the normaliser (kube-scheduler's MaxNodeScore scale).
    normalized: float
    #: This term's contribution to the cost (lower is better).
    weighted: float
    #: Where the raw value came from when that varies per pair: "measured" or "model" (RTT).
    source: str = ""


def normalize(raw: float, normaliser: float) -> float:
    """Map a raw cost-like value to 0-100 where 100 is best."""
    if normaliser <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (1.0 - raw / normaliser)))


__all__ = ["ScoreTerm", "carbon", "latency", "normalize", "reliability"]
