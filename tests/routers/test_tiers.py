"""Tier demand: shares in effect, demand split per region, replica rounding, tier problems."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from aifactory.api import InferenceDeployment, InferenceRouter
from aifactory.routers.tiers import (
    REASON_CLAIMED,
    REASON_INVALID,
    REASON_NOT_FOUND,
    SOURCE_LIVE,
    SOURCE_REST,
    SOURCE_SPEC,
    RouterSignals,
    apply,
    derive,
    effective_shares,
    with_tiers,
)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cascade.yaml"

REGIONS = {
    "eu-west": ("IE", 53.35, -6.26),
    "eu-central": ("DE", 50.11, 8.68),
    "us-south": ("US", 29.76, -95.37),
}


def router(
    shares: dict[str, float],
    rps: dict[str, float],
    *,
    name: str = "r",
    headroom: float = 0.2,
    live: tuple[str, ...] = (),
) -> InferenceRouter:
    tiers: list[dict[str, Any]] = []
    for tier, share in shares.items():
        t: dict[str, Any] = {"deployment": tier, "share": share}
        if tier in live:
            t["shareFrom"] = {"prometheus": {"url": "http://p:9090", "query": "q"}}
        tiers.append(t)
    return InferenceRouter.model_validate(
        {
            "metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {
                "demand": {
                    "headroom": headroom,
                    "regions": [
                        {
                            "name": n,
                            "country": REGIONS[n][0],
                            "latitude": REGIONS[n][1],
                            "longitude": REGIONS[n][2],
                            "requestsPerSecond": v,
                        }
                        for n, v in rps.items()
                    ],
                },
                "tiers": tiers,
            },
        }
    )


def tier(
    name: str, throughput: float | None, headroom: float | None = None, **spec: Any
) -> InferenceDeployment:
    body: dict[str, Any] = {
        "model": {"name": name, "image": "registry.example/m:1"},
        "replicas": {"min": 1, "max": 1000},
        **spec,
    }
    if throughput is not None:
        body["throughputPerReplica"] = throughput
    if headroom is not None:
        body["demand"] = {"headroom": headroom}
    return InferenceDeployment.model_validate(
        {"metadata": {"name": name, "namespace": "ns", "uid": name}, "spec": body}
    )


def test_sample_cascade_splits_80_20_per_region() -> None:
    docs = [d for d in yaml.safe_load_all(SAMPLE.read_text()) if d]
    routers = [InferenceRouter.from_manifest(d) for d in docs if d["kind"] == "InferenceRouter"]
    deployments = [
        InferenceDeployment.from_manifest(d) for d in docs if d["kind"] == "InferenceDeployment"
    ]
    plan = derive(routers, deployments)
    small, large = plan.tiers["chat/chat-small"], plan.tiers["chat/chat-large"]
    assert small.requests_per_second == pytest.approx(
        {"eu-west": 120, "eu-central": 160, "eu-north": 40, "us-south": 80}
    )
    assert large.requests_per_second == pytest.approx(
        {"eu-west": 30, "eu-central": 40, "eu-north": 10, "us-south": 20}
    )
    derived = {d.ref: d for d in with_tiers(deployments, plan)}
    # the numbers samples/cascade.yaml states in its comment
    assert derived["chat/chat-small"].replicas_per_region() == {
        "eu-west": 3,
        "eu-central": 4,
        "eu-north": 1,
        "us-south": 2,
    }
    assert derived["chat/chat-large"].replicas_needed() == 14
    status = small.status()
    assert (status.router, status.share, status.headroom) == ("assistant", 0.8, 0.2)
    # the user's spec is untouched
    assert not next(d for d in deployments if d.name == "chat-small").spec.demand.regions


@pytest.mark.parametrize(
    ("shares", "rps", "throughput", "headroom"),
    [
        ({"s": 0.8, "l": 0.2}, {"eu-west": 150, "us-south": 100}, {"s": 50, "l": 10}, {}),
        ({"s": 0.7, "m": 0.2, "l": 0.1}, {"eu-west": 333}, {"s": 40, "m": 7, "l": 3}, {"m": 0}),
        ({"s": 0.6, "l": 0.4}, {"eu-west": 1, "eu-central": 0.5}, {"s": 100, "l": 100}, {}),
        ({"s": 0.95, "l": 0.05}, {"eu-west": 999.9}, {"s": 33.3, "l": 2.2}, {"s": 0.5}),
        ({"s": 1.0, "l": 0.0}, {"eu-west": 100}, {"s": 10, "l": 10}, {}),
    ],
)
def test_tier_replicas_cover_the_router_demand_with_their_own_headroom(
    shares: dict[str, float],
    rps: dict[str, float],
    throughput: dict[str, float],
    headroom: dict[str, float],
) -> None:
    r = router(shares, rps, headroom=0.2)
    tiers = [tier(n, throughput[n], headroom.get(n)) for n in shares]
    plan = derive([r], tiers)
    derived = {d.name: d for d in with_tiers(tiers, plan)}
    for region, total in rps.items():
        served = 0.0
        for name, share in shares.items():
            d = derived[name]
            h = headroom.get(name, 0.2)  # its own, else the router's
            n = d.replicas_per_region()[region]
            assert n == math.ceil(total * share * (1 + h) / throughput[name] - 1e-9)
            assert n * throughput[name] >= total * share * (1 + h) - 1e-6
            served += n * throughput[name]
        assert served >= total  # the tiers together cover the router's demand


def test_a_tier_without_demand_takes_the_routers_headroom() -> None:
    r = router({"s": 0.5, "l": 0.5}, {"eu-west": 100}, headroom=0.3)
    plan = derive([r], [tier("s", 10), tier("l", 10, headroom=0.0)])
    assert plan.tiers["ns/s"].headroom == 0.3
    assert plan.tiers["ns/l"].headroom == 0.0


def test_apply_replaces_regions_and_drops_the_tiers_own_source() -> None:
    own = tier(
        "s",
        10,
        demand={
            "regions": [
                {
                    "name": "x",
                    "country": "FR",
                    "latitude": 48,
                    "longitude": 2,
                    "requestsPerSecond": 5,
                }
            ],
            "prometheus": {"url": "http://p:9090", "query": "q"},
        },
    )
    plan = derive([router({"s": 1.0}, {"eu-west": 40})], [own])
    placed = apply(own, plan.tiers["ns/s"])
    assert [(x.name, x.requests_per_second) for x in placed.spec.demand.regions] == [
        ("eu-west", 40.0)
    ]
    assert placed.spec.demand.prometheus is None
    assert own.spec.demand.regions[0].name == "x"  # a copy: the original is unchanged


@pytest.mark.parametrize(
    ("live", "readings", "expected", "sources"),
    [
        # no reading yet: the spec's shares
        (("l",), {}, {"s": 0.8, "l": 0.2}, {"s": SOURCE_SPEC, "l": SOURCE_SPEC}),
        # the escalation rate replaces the large tier's share, the small one takes the rest
        (("l",), {"l": 0.35}, {"s": 0.65, "l": 0.35}, {"s": SOURCE_REST, "l": SOURCE_LIVE}),
        # readings out of 0..1 are clamped
        (("l",), {"l": 1.7}, {"s": 0.0, "l": 1.0}, {"s": SOURCE_REST, "l": SOURCE_LIVE}),
    ],
)
def test_live_shares(
    live: tuple[str, ...],
    readings: dict[str, float],
    expected: dict[str, float],
    sources: dict[str, str],
) -> None:
    r = router({"s": 0.8, "l": 0.2}, {"eu-west": 100}, live=live)
    shares = effective_shares(r.spec, readings)
    assert dict(shares.values) == pytest.approx(expected)
    assert dict(shares.sources) == sources


def test_fixed_tiers_share_the_rest_in_proportion() -> None:
    r = router({"s": 0.6, "m": 0.3, "l": 0.1}, {"eu-west": 100}, live=("l",))
    shares = effective_shares(r.spec, {"l": 0.4})
    assert dict(shares.values) == pytest.approx({"s": 0.4, "m": 0.2, "l": 0.4})
    assert sum(shares.values.values()) == pytest.approx(1.0)


def test_live_demand_and_shares_reach_the_tiers() -> None:
    r = router({"s": 0.8, "l": 0.2}, {"eu-west": 100, "us-south": 50}, live=("l",))
    signals = {r.ref: RouterSignals(demand={"eu-west": 200}, shares={"l": 0.5})}
    plan = derive([r], [tier("s", 10), tier("l", 10)], signals)
    assert plan.tiers["ns/l"].requests_per_second == pytest.approx(
        {"eu-west": 100, "us-south": 25}  # us-south keeps its spec value
    )
    assert plan.tiers["ns/s"].share == pytest.approx(0.5)


def test_problems_are_reported_not_raised() -> None:
    first = router({"s": 0.5, "l": 0.5}, {"eu-west": 10}, name="a")
    second = router({"s": 0.5, "gone": 0.3, "bad": 0.2}, {"eu-west": 10}, name="b")
    plan = derive([second, first], [tier("s", 10), tier("l", 10), tier("bad", None)], invalid=())
    assert plan.tiers["ns/s"].router == "ns/a"  # the first by namespace/name claims it
    problems = plan.routers["ns/b"].problems
    assert problems["s"].reason == REASON_CLAIMED and "ns/a" in problems["s"].message
    assert problems["gone"].reason == REASON_NOT_FOUND
    assert problems["bad"].reason == REASON_INVALID
    assert "throughputPerReplica" in problems["bad"].message
    assert set(plan.tiers) == {"ns/s", "ns/l"}
    unreadable = derive([second], [], invalid=["ns/gone"])
    assert unreadable.routers["ns/b"].problems["gone"].reason == REASON_INVALID
