"""Carbon accounting of a placement: what it emits now, and what carbon awareness bought.

For one deployment (BRIEF "Accounting"):

* gCO2e/h now = sum over the modules it uses of GPUs x board power (W) x PUE x carbon
  intensity (gCO2e/kWh) / 1000: W x gCO2e/kWh / 1000 = gCO2e/h. The GPUs are the ones the
  decision takes per pool (`Assignment.gpus`), so a module with an H100 and an L4 pool counts
  each at its own board power; the intensity is the effective one the decision used
  (`Assignment.carbon_intensity`, the live status value when there was one).
* the same for the placement a carbon-blind solve makes: the same fleet, policies and capacity,
  every deployment with carbonWeight = 0 (latency only) and no running placement to stick to;
* the mean RTT weighted by replicas (sum over regions of replicas x RTT / replicas with a
  region) of both, so the latency paid for the carbon saved is their difference.

Replicas that found no module emit nothing here: compare `Decision.unplaced_replicas` of the two
decisions before reading a saving into a smaller figure. Pure: decisions and views in, numbers
out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aifactory.placement.model import PolicyView, WorkloadView
from aifactory.placement.result import Decision, FleetDecision
from aifactory.placement.state import FleetState

#: A fleet solver with the signature of place_fleet / place_sequential.
Solver = Callable[..., FleetDecision]


@dataclass(frozen=True, slots=True)
class CarbonAccount:
    """Emissions now and the carbon-blind counterfactual of one deployment.

    grams in gCO2e per hour; RTTs in ms, the replica-weighted mean over demand regions (None
    for a deployment without demand regions or with nothing placed).
    """

    deployment: str
    grams_per_hour: float
    latency_only_grams_per_hour: float
    mean_rtt_ms: float | None
    latency_only_mean_rtt_ms: float | None

    @property
    def saved_grams_per_hour(self) -> float:
        """gCO2e/h avoided against the latency-only placement (negative: it emits more)."""
        return self.latency_only_grams_per_hour - self.grams_per_hour

    @property
    def rtt_paid_ms(self) -> float | None:
        """Mean RTT added by choosing greener modules (None when either mean is undefined)."""
        if self.mean_rtt_ms is None or self.latency_only_mean_rtt_ms is None:
            return None
        return self.mean_rtt_ms - self.latency_only_mean_rtt_ms

    def to_dict(self) -> dict[str, Any]:
        """JSON form: gramsPerHour, latencyOnlyGramsPerHour, meanRttMs, latencyOnlyMeanRttMs."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "gramsPerHour": round(self.grams_per_hour, 3),
            "latencyOnlyGramsPerHour": round(self.latency_only_grams_per_hour, 3),
            "meanRttMs": r(self.mean_rtt_ms),
            "latencyOnlyMeanRttMs": r(self.latency_only_mean_rtt_ms),
        }


def grams_per_hour(fleet: FleetState, decision: Decision) -> float:
    """gCO2e/h of a decision now: sum of GPUs x powerW x pue x intensity / 1000.

    Raises KeyError when the decision names a module or a GPU model the fleet does not have
    (a decision from another fleet: a caller bug).
    """
    total = 0.0
    for a in decision.assignments:
        module = fleet.modules[fleet.index[a.module]]
        power = {p.model: p.power_w for p in module.pools}
        watts = sum(n * power[model] for model, n in a.gpus.items())
        total += watts * module.pue * a.carbon_intensity / 1000.0
    return total


def mean_rtt_ms(decision: Decision) -> float | None:
    """Replica-weighted mean RTT (ms) over the regions the decision serves; None without any."""
    replicas = 0
    weighted = 0.0
    for a in decision.assignments:
        for region, n in a.regions.items():
            ms = a.latency_ms.get(region)
            if ms is not None and n > 0:
                replicas += n
                weighted += n * ms
    return weighted / replicas if replicas else None


def latency_only(workload: WorkloadView) -> WorkloadView:
    """The carbon-blind twin of a deployment: carbonWeight 0, nothing running to stick to.

    A deployment that weighs latency at 0 too keeps a latency weight of 1, so the twin still
    prefers near modules instead of falling back to name order.
    """
    return dataclasses.replace(
        workload,
        carbon_weight=0.0,
        latency_weight=workload.latency_weight or 1.0,
        current=(),
    )


def account(
    fleet: FleetState, decision: Decision, latency_only_decision: Decision
) -> CarbonAccount:
    """The carbon account of one deployment from its decision and its latency-only twin's."""
    if decision.deployment != latency_only_decision.deployment:
        raise ValueError(
            f"decisions of different deployments: {decision.deployment} and "
            f"{latency_only_decision.deployment}"
        )
    return CarbonAccount(
        deployment=decision.deployment,
        grams_per_hour=grams_per_hour(fleet, decision),
        latency_only_grams_per_hour=grams_per_hour(fleet, latency_only_decision),
        mean_rtt_ms=mean_rtt_ms(decision),
        latency_only_mean_rtt_ms=mean_rtt_ms(latency_only_decision),
    )


def account_fleet(
    fleet: FleetState,
    workloads: Sequence[WorkloadView],
    policies: Iterable[PolicyView],
    decided: FleetDecision,
    *,
    solve: Solver,
) -> Mapping[str, CarbonAccount]:
    """Accounts of every deployment of `decided`, by "namespace/name".

    The counterfactual is one more solve with `solve` (the solver that made `decided`, e.g.
    place_fleet) on the same fleet and policies with every workload made `latency_only`, so
    carbon-blind deployments compete for capacity the same way the real ones did.
    """
    blind = solve([latency_only(w) for w in workloads], fleet, tuple(policies))
    return {
        d.deployment: account(fleet, d, blind.decision(d.deployment)) for d in decided.placements
    }


__all__ = [
    "CarbonAccount",
    "account",
    "account_fleet",
    "grams_per_hour",
    "latency_only",
    "mean_rtt_ms",
]
