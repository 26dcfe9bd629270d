"""Module status from the monitor's probes: what is written, and how often."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from aifactory.api import AIFactoryModule
from aifactory.clusters.observe import ModuleObservation, PoolUse
from aifactory.controllers.modules import Probe, SignalSettings, module_status

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "modules.yaml"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = SignalSettings(heartbeat_timeout=30.0)


def _reykjavik() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(SAMPLES.read_text()) if d]
    return next(d for d in docs if d["metadata"]["name"] == "reykjavik")


def _probe(at: datetime, h100_used: int = 0) -> Probe:
    pools = {
        "H100": PoolUse(
            "H100", allocatable=64, requested=h100_used, nodes=8, ready_nodes=8, usable_nodes=8
        ),
        "A100": PoolUse("A100", allocatable=32, nodes=4, ready_nodes=4, usable_nodes=4),
    }
    return Probe(reachable=True, observation=ModuleObservation(pools, {}), last_seen=at)


def _steady(obj: dict[str, Any], at: datetime) -> tuple[dict[str, Any], Any]:
    """Run the monitor until its patch is empty; the object as the hub then holds it."""
    smoothing: Any = {}
    for _ in range(5):
        out = module_status(
            AIFactoryModule.model_validate(obj), _probe(at), smoothing, at, SETTINGS
        )
        smoothing = out.smoothing
        if not out.patch:
            return obj, smoothing
        obj = {**obj, "status": {**(obj.get("status") or {}), **out.patch}}
    raise AssertionError(f"status never settles: {out.patch}")


def test_a_steady_module_is_written_only_when_its_heartbeat_is_due() -> None:
    obj, smoothing = _steady(_reykjavik(), T0)
    assert obj["status"]["lastHeartbeatTime"].startswith("2026-12-01T12:00:00")
    # every heartbeatInterval (10 s) the monitor probes; nothing changed: nothing to write
    for seconds in (10, 20, 29):
        at = T0 + timedelta(seconds=seconds)
        out = module_status(
            AIFactoryModule.model_validate(obj), _probe(at), smoothing, at, SETTINGS
        )
        assert out.patch == {}, seconds
    at = T0 + timedelta(seconds=30)
    out = module_status(AIFactoryModule.model_validate(obj), _probe(at), smoothing, at, SETTINGS)
    assert set(out.patch) == {"lastHeartbeatTime"}


def test_any_other_change_carries_a_fresh_heartbeat() -> None:
    obj, smoothing = _steady(_reykjavik(), T0)
    at = T0 + timedelta(seconds=10)
    out = module_status(
        AIFactoryModule.model_validate(obj), _probe(at, h100_used=8), smoothing, at, SETTINGS
    )
    assert out.patch["gpusFree"] == 64 + 32 - 8
    assert out.patch["lastHeartbeatTime"].startswith("2026-12-01T12:00:10")


def test_an_unreachable_module_never_gets_a_heartbeat() -> None:
    obj, smoothing = _steady(_reykjavik(), T0)
    at = T0 + timedelta(seconds=40)
    out = module_status(
        AIFactoryModule.model_validate(obj),
        Probe(reachable=False, reason="Unreachable", message="connection refused", last_seen=T0),
        smoothing,
        at,
        SETTINGS,
    )
    assert out.patch  # the Reachable condition changed
    assert "lastHeartbeatTime" not in out.patch
