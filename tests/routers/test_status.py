"""A router's status: tiers, routing, blended figures and kstatus conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aifactory.api import (
    AIFactoryModule,
    ConditionStatus,
    InferenceDeployment,
    InferenceDeploymentStatus,
    InferenceRouter,
)
from aifactory.placement import PlacementSettings
from aifactory.routers.figures import Figures, module_facts
from aifactory.routers.status import SignalState, TierInputs, router_status
from aifactory.routers.tiers import derive

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


ROUTER = InferenceRouter.from_manifest(
    next(d for d in _docs("cascade.yaml") if d["kind"] == "InferenceRouter")
)
TIERS = {
    d["metadata"]["name"]: InferenceDeployment.from_manifest(d)
    for d in _docs("cascade.yaml")
    if d["kind"] == "InferenceDeployment"
}
MODULES = [AIFactoryModule.from_manifest(d) for d in _docs("modules.yaml")]
FACTS = module_facts(MODULES)


def deployment_status(cells: dict[str, dict[str, int]], ready: bool) -> InferenceDeploymentStatus:
    """module -> region -> replicas."""
    total = sum(sum(r.values()) for r in cells.values())
    return InferenceDeploymentStatus.model_validate(
        {
            "replicas": total,
            "readyReplicas": total if ready else 0,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "ReplicasReady" if ready else "ReplicasNotReady",
                    "message": f"{total if ready else 0}/{total} replicas ready",
                }
            ],
            "placements": [
                {"module": m, "replicas": sum(r.values()), "regions": r} for m, r in cells.items()
            ],
        }
    )


SMALL = {
    "paris": {"eu-west": 3, "eu-central": 4},
    "oslo": {"eu-north": 1},
    "dallas": {"us-south": 2},
}
LARGE = {"oslo": {"eu-west": 4, "eu-central": 5, "eu-north": 2}, "reykjavik": {"us-south": 3}}


def status_for(ready: bool, **kw: Any) -> Any:
    view = derive([ROUTER], TIERS.values()).routers[ROUTER.ref]
    tiers = {
        "chat-small": TierInputs(
            TIERS["chat-small"],
            deployment_status(SMALL, ready),
            {m: sum(r.values()) if ready else 0 for m, r in SMALL.items()},
        ),
        "chat-large": TierInputs(
            TIERS["chat-large"],
            deployment_status(LARGE, ready),
            {m: sum(r.values()) if ready else 0 for m, r in LARGE.items()},
        ),
    }
    return router_status(view, tiers, FACTS, PlacementSettings(), NOW, **kw)


def cond(status: Any, type_: str) -> Any:
    return next(c for c in status.conditions if c.type == type_)


def test_every_tier_ready_and_routed() -> None:
    baseline = Figures(500.0, 40.0, 1000.0)
    st = status_for(True, baseline=baseline)
    assert cond(st, "Ready").status is ConditionStatus.TRUE
    assert cond(st, "Ready").reason == "TiersReady"
    assert cond(st, "Stalled").status is ConditionStatus.FALSE
    assert st.tier_summary == "chat-small=0.8,chat-large=0.2"
    by_region = {r.region: {t.deployment: t for t in r.tiers} for r in st.routing}
    assert [m.module for m in by_region["us-south"]["chat-small"].modules] == ["dallas"]
    assert [m.module for m in by_region["us-south"]["chat-large"].modules] == ["reykjavik"]
    assert by_region["eu-west"]["chat-large"].requests_per_second == 30
    small = st.tiers[0]
    assert (small.replicas, small.ready_replicas, small.requests_per_second) == (10, 10, 400)
    assert st.blended.largest_tier.deployment == "chat-large"
    assert st.blended.largest_tier.mean_rtt_ms == 40.0
    # the cascade's mean RTT is the request-weighted blend of its tiers
    large = st.tiers[1]
    assert st.mean_rtt_ms is not None and small.mean_rtt_ms is not None
    assert large.mean_rtt_ms is not None
    assert abs(st.mean_rtt_ms - (400 * small.mean_rtt_ms + 100 * large.mean_rtt_ms) / 500) < 0.02
    assert "DemandSignal" not in {c.type for c in st.conditions}


def test_nothing_ready_yet_routes_nothing() -> None:
    st = status_for(False)
    assert cond(st, "Ready").reason == "TiersNotReady"
    assert cond(st, "Reconciling").status is ConditionStatus.TRUE
    assert all(not t.modules for r in st.routing for t in r.tiers)


def test_missing_tier_is_a_condition() -> None:
    view = derive([ROUTER], [TIERS["chat-small"]]).routers[ROUTER.ref]
    st = router_status(view, {}, FACTS, PlacementSettings(), NOW)
    assert cond(st, "Stalled").status is ConditionStatus.TRUE
    assert cond(st, "Stalled").reason == "TierNotFound"
    assert "chat/chat-large does not exist" in cond(st, "Ready").message
    assert [t.found for t in st.tiers] == [False, False]


def test_signal_conditions_say_what_is_kept() -> None:
    live = ROUTER.model_copy(deep=True)
    live.spec.demand.prometheus = live.spec.demand.model_validate(
        {
            "regions": [r.model_dump(by_alias=True) for r in live.spec.demand.regions],
            "prometheus": {"url": "http://p:9090", "query": "q"},
        }
    ).prometheus
    view = derive([live], TIERS.values()).routers[live.ref]
    kept = SignalState(
        effective={"eu-west": 200.0},
        read_at=NOW,
        error_reason="PrometheusUnreachable",
        error_message="cannot reach Prometheus",
    )
    st = router_status(view, {}, FACTS, PlacementSettings(), NOW, demand_signal=kept)
    c = cond(st, "DemandSignal")
    assert (c.status, c.reason) == (ConditionStatus.FALSE, "PrometheusUnreachable")
    assert "keeping the reading of 2026-12-01T12:00:00Z" in c.message
    assert st.observed_demand == {"eu-west": 200.0}
