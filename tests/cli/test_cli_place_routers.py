"""`aifactoryctl place` with InferenceRouters: tiers placed by their own rules, the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aifactory.api import AIFactoryModule
from aifactory.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
MODULES = {
    d["metadata"]["name"]: AIFactoryModule.from_manifest(d)
    for d in yaml.safe_load_all((SAMPLES / "modules.yaml").read_text())
    if d
}


def place(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["place", *args, "-o", "json"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


@pytest.mark.parametrize("mode", ["fleet", "incremental", "operator"])
def test_sample_cascade(capsys: pytest.CaptureFixture[str], mode: str) -> None:
    doc = place(capsys, "-f", str(SAMPLES), "--mode", mode)
    placements = {p["deployment"]: p for p in doc["placements"]}  # type: ignore[attr-defined]
    small, large = placements["chat/chat-small"], placements["chat/chat-large"]
    # each tier's replicas follow the router's demand x share, per region
    assert small["replicas"] == 10 and large["replicas"] == 14
    assert small["unplacedReplicas"] == 0 and large["unplacedReplicas"] == 0
    # the small tier: within its 20 ms SLO of every region; the large one: green modules only
    for a in small["assignments"]:
        assert all(ms <= 20 for ms in a["latencyMs"].values()), a
    served = {r for a in small["assignments"] for r in a["regions"]}
    assert served == {"eu-west", "eu-central", "eu-north", "us-south"}
    for a in large["assignments"]:
        assert MODULES[a["module"]].renewable_share() >= 0.9, a["module"]
    (router,) = doc["routers"]  # type: ignore[misc]
    assert router["router"] == "chat/assistant" and not router["problems"]
    cascade, alone = router["cascade"], router["largestTier"]["figures"]
    assert router["largestTier"]["deployment"] == "chat-large"
    assert cascade["requestsPerSecond"] == alone["requestsPerSecond"] == 500
    # the cascade is faster and emits less per request than the large model alone
    assert cascade["meanRttMs"] < alone["meanRttMs"]
    assert cascade["gramsPer1000Requests"] < alone["gramsPer1000Requests"]
    tiers = router["tiers"]
    assert [t["deployment"] for t in tiers] == ["chat-small", "chat-large"]
    assert cascade["gramsPerHour"] == pytest.approx(
        sum(t["figures"]["gramsPerHour"] for t in tiers), abs=0.02
    )
    assert set(router["largestTier"]["modules"]) <= {"reykjavik", "oslo"}


def test_table_shows_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["place", "-f", str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "ROUTER" in out and "chat-large alone" in out
    assert "the cascade against serving everything with chat-large: mean RTT" in out


def test_missing_tier_is_reported_not_fatal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docs = [d for d in yaml.safe_load_all((SAMPLES / "cascade.yaml").read_text()) if d]
    kept = [d for d in docs if d["metadata"]["name"] != "chat-large"]
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump_all(kept))
    doc = place(capsys, "-f", str(SAMPLES / "modules.yaml"), "-f", str(tmp_path))
    (router,) = doc["routers"]  # type: ignore[misc]
    assert "chat/chat-large does not exist" in router["problems"]["chat-large"]
    assert router["largestTier"]["figures"] is None
    placements = {p["deployment"]: p for p in doc["placements"]}  # type: ignore[attr-defined]
    assert placements["chat/chat-small"]["replicas"] == 10  # still fed by its router
