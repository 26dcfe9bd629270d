"""The placement policies a simulation compares, side by side on the same inputs.

Every policy runs under the operator's rules (keep or repair between rebalances, hysteresis,
disruption budget, make-before-break, toleration, and every hard rule: sovereignty, SLO,
energy, capacity); they differ only in what they minimise and whether they rebalance:

- `engine`: each deployment's own latencyWeight and carbonWeight; rebalances;
- `latency-only`: carbonWeight 0 (latencyWeight kept, 1 when it was 0); rebalances;
- `carbon-only`: latencyWeight 0 (carbonWeight kept, 1 when it was 0), the SLO still a hard
  rule; rebalances;
- `serve-in-country`: the engine's objective, each region served from its own country where
  the modules there can take it; rebalances;
- `static`: the engine's objective, placed once and never rebalanced: only forced repairs (a
  module lost, demand changed).

`serve-in-country` splits a deployment in two for the engine: per region, as many replicas as
the modules of the region's own country can hold (those passing the deployment's rules, capacity
counted for the deployment alone), bound by an extra Enforce rule "same country as the demand"
(`IN_COUNTRY_POLICY`); the rest, and regions with no such module, placed as the engine would
(without minModules or a guaranteed minimum of their own). The extra rule is the policy's
choice, not a sovereignty rule: leaving a module for it is a voluntary, budgeted move, and
sovereignty violations are checked against the real policies only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from aifactory.placement import PolicyView, Selector, WorkloadView

ENGINE = "engine"
LATENCY_ONLY = "latency-only"
CARBON_ONLY = "carbon-only"
SERVE_IN_COUNTRY = "serve-in-country"
STATIC = "static"
POLICY_NAMES: tuple[str, ...] = (ENGINE, LATENCY_ONLY, CARBON_ONLY, SERVE_IN_COUNTRY, STATIC)

#: Label the simulator puts on the in-country half of a deployment under serve-in-country.
IN_COUNTRY_LABEL = "simulation.aifactory.dev/serve-in-country"
#: Suffix of the key of the other half ("namespace/name~abroad").
ABROAD_SUFFIX = "~abroad"

IN_COUNTRY_POLICY = PolicyView(
    name="simulation-serve-in-country",
    enforcement="Enforce",
    deployment_selector=Selector.of({IN_COUNTRY_LABEL: "true"}),
    data_residency="SameJurisdictionAsDemand",
)


@dataclass(frozen=True, slots=True)
class Policy:
    """One compared policy (see the module docstring)."""

    name: str
    description: str
    rebalances: bool = True
    in_country: bool = False

    def objective(self, wl: WorkloadView) -> WorkloadView:
        """The deployment as this policy's engine sees it (weights only; nothing else changes)."""
        if self.name == LATENCY_ONLY:
            # as placement.accounting.latency_only, keeping the running placement
            return dataclasses.replace(
                wl, carbon_weight=0.0, latency_weight=wl.latency_weight or 1.0
            )
        if self.name == CARBON_ONLY:
            return dataclasses.replace(
                wl, latency_weight=0.0, carbon_weight=wl.carbon_weight or 1.0
            )
        return wl


POLICIES: dict[str, Policy] = {
    ENGINE: Policy(ENGINE, "as configured: each deployment's weights, hysteresis, budget"),
    LATENCY_ONLY: Policy(LATENCY_ONLY, "carbon-blind: carbonWeight 0"),
    CARBON_ONLY: Policy(CARBON_ONLY, "latency-blind: latencyWeight 0, SLO still hard"),
    SERVE_IN_COUNTRY: Policy(
        SERVE_IN_COUNTRY, "each region from its own country where possible", in_country=True
    ),
    STATIC: Policy(STATIC, "placed once, never rebalanced; forced repairs only", rebalances=False),
}


def policy(name: str) -> Policy:
    """The named policy; ValueError naming the known ones."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; one of: {', '.join(POLICY_NAMES)}") from None


def split_in_country(wl: WorkloadView, home: Sequence[int]) -> tuple[WorkloadView, ...]:
    """The serve-in-country halves of a deployment: `home[r]` of region r's replicas served in
    its own country (what the modules there can hold), the rest abroad. One half when every
    replica or none is served at home; the same region may appear in both halves."""
    if not wl.regions or not any(home):
        return (wl,)
    here = tuple(
        dataclasses.replace(r, replicas=min(r.replicas, int(h)))
        for r, h in zip(wl.regions, home, strict=True)
        if h > 0
    )
    away = tuple(
        dataclasses.replace(r, replicas=r.replicas - min(r.replicas, int(h)))
        for r, h in zip(wl.regions, home, strict=True)
        if r.replicas - min(r.replicas, int(h)) > 0
    )
    labels = {**wl.labels, IN_COUNTRY_LABEL: "true"}
    first = dataclasses.replace(
        wl,
        regions=here,
        replicas=sum(r.replicas for r in here),
        labels=labels,
        current=(),
    )
    if not away:
        return (first,)
    second = dataclasses.replace(
        wl,
        key=wl.key + ABROAD_SUFFIX,
        regions=away,
        replicas=sum(r.replicas for r in away),
        min_modules=0,
        min_replicas=0,
        current=(),
    )
    return (first, second)


__all__ = [
    "ABROAD_SUFFIX",
    "CARBON_ONLY",
    "ENGINE",
    "IN_COUNTRY_LABEL",
    "IN_COUNTRY_POLICY",
    "LATENCY_ONLY",
    "POLICIES",
    "POLICY_NAMES",
    "SERVE_IN_COUNTRY",
    "STATIC",
    "Policy",
    "policy",
    "split_in_country",
]
