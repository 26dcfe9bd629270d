"""InferenceRouters in the simulator: tier deployments are placed for their router's demand x
share, as `aifactoryctl place` and the operator place them, and follow the router's bursts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from aifactory.simulation import SimulationConfig, build_timeline, load_scenario, simulate
from aifactory.simulation.series import load_carbon

REPO = Path(__file__).resolve().parents[2]
FLEET = [REPO / "samples" / "modules.yaml", REPO / "samples" / "cascade.yaml"]
T0 = datetime(2022, 5, 2, tzinfo=UTC)


def test_tiers_carry_their_routers_demand_times_share() -> None:
    scenario = load_scenario(FLEET)
    assert scenario.tier_of == {
        "chat/chat-large": "chat/assistant",
        "chat/chat-small": "chat/assistant",
    }
    by_ref = {d.ref: d for d in scenario.deployments}
    router = {"eu-west": 150.0, "eu-central": 200.0, "eu-north": 50.0, "us-south": 100.0}
    for ref, share in (("chat/chat-small", 0.8), ("chat/chat-large", 0.2)):
        demand = by_ref[ref].spec.demand
        rps = {r.name: r.requests_per_second for r in demand.regions}
        assert rps == pytest.approx({k: v * share for k, v in router.items()}), ref
        assert demand.headroom == 0.2


def test_tiers_follow_the_routers_bursts_and_are_placed_within_the_rules() -> None:
    scenario = load_scenario(FLEET)
    config = SimulationConfig.from_operator(policies=("engine",), workers=1)
    built = build_timeline(
        scenario,
        config,
        start=T0,
        end=T0 + timedelta(hours=6),
        carbon=load_carbon([REPO / "samples" / "simulation" / "carbon-2022.csv.gz"]),
    )
    served = built.demand.served
    # both tiers serve shares of the same requests: 80/20 at every step and region
    np.testing.assert_allclose(served["chat/chat-small"], 4.0 * served["chat/chat-large"])
    wanted = built.timeline.wanted
    assert wanted["chat/chat-small"].sum(axis=1).min() >= 4
    (result,) = simulate(scenario, built.timeline, config)
    s = result.summary()
    assert s["unplacedReplicaHours"] == 0
    assert (s["sovereigntyViolations"], s["sloViolations"], s["capacityViolations"]) == (0, 0, 0)
