"""The operator's accountability glue, pure parts: which deployments get a Report, cost terms
of a placement, and the SLOBreached condition on status."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aifactory.api import (
    AIFactoryModule,
    InferenceDeployment,
    InferenceDeploymentStatus,
    ModulePlacement,
    SovereigntyPolicy,
)
from aifactory.controllers.accountability import build_reports, cost_terms, fleet_digest
from aifactory.controllers.fleet import HubSnapshot
from aifactory.placement import FleetState
from aifactory.placement.cycle import prepare
from aifactory.placement.from_api import module_view, workload_view

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


def snapshot() -> HubSnapshot:
    return HubSnapshot(
        modules=tuple(AIFactoryModule.from_manifest(d) for d in docs("modules.yaml")),
        policies=tuple(SovereigntyPolicy.from_manifest(d) for d in docs("policies.yaml")),
        deployments=tuple(InferenceDeployment.from_manifest(d) for d in docs("deployments.yaml")),
        namespace_labels={
            d["metadata"]["name"]: d["metadata"].get("labels", {}) for d in docs("namespaces.yaml")
        },
    )


def test_bound_deployments_get_reports_unbound_ones_none() -> None:
    snap = snapshot()
    decided = {
        "eu-chat/eu-assistant": InferenceDeploymentStatus(
            placements=[ModulePlacement(module="paris", replicas=2, regions={"eu-west": 2})]
        )
    }
    reports, unbound = build_reports(snap, decided, {}, NOW)
    # eu-assistant (restricted, eu namespace) and support-classifier (confidential) are bound
    assert set(reports) == {"eu-chat/eu-assistant", "ml-platform/support-classifier"}
    assert unbound == ["batch/nightly-summarizer"]
    eu = reports["eu-chat/eu-assistant"]
    assert eu["metadata"]["namespace"] == "eu-chat"
    assert eu["summary"]["pass"] == 3 and eu["summary"]["fail"] == 0
    assert reports["ml-platform/support-classifier"]["results"] == []  # nothing placed yet


def test_cost_terms_sum_the_engines_terms_over_a_placement() -> None:
    snap = snapshot()
    fleet = FleetState([module_view(m) for m in snap.modules])
    eu = snap.deployment("eu-chat/eu-assistant")
    assert eu is not None
    ws = prepare(fleet, workload_view(eu, {"aifactory.dev/residency": "eu"}))
    cells = {("eu-west", "paris"): 2, ("eu-central", "paris"): 1, ("gone", "paris"): 5}
    terms = cost_terms(ws, fleet, cells)
    r = {n: i for i, n in enumerate(ws.region_names)}
    m = fleet.index["paris"]
    assert terms.latency == pytest.approx(
        2 * ws.latency_cost[r["eu-west"], m] + ws.latency_cost[r["eu-central"], m]
    )
    assert terms.carbon == pytest.approx(3 * ws.carbon_cost[m])  # the unknown region counts nothing
    assert terms.reliability == 0 and terms.total == pytest.approx(terms.latency + terms.carbon)
    assert cost_terms(ws, fleet, {("eu-west", "nowhere"): 3}).total == 0


def test_the_modules_digest_is_computed_once_per_cycle_and_follows_readiness() -> None:
    snap = snapshot()
    views = [module_view(m) for m in snap.modules]
    fleet = FleetState(views)
    first = fleet_digest(fleet)
    assert fleet_digest(fleet) == first and len(first) == 64
    down = [dataclasses.replace(v, ready=v.name != "oslo") for v in views]
    assert fleet_digest(FleetState(down)) != first
