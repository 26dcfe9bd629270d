"""`aifactoryctl place --rtt/--rtt-profile` and the carbon account in `-o json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aifactory.cli.main import main
from aifactory.placement.rtt import RTT_PROFILES

SMALL = Path(__file__).parent / "data" / "small"


def place(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(["place", "-f", str(SMALL), "-o", "json", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def chat(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in doc["placements"] if p["deployment"] == "eu/chat")


def test_every_deployment_has_its_carbon_account(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = place(capsys)
    assert code == 0
    for p in doc["placements"]:
        assert set(p["carbon"]) == {
            "gramsPerHour",
            "latencyOnlyGramsPerHour",
            "meanRttMs",
            "latencyOnlyMeanRttMs",
        }
    c = chat(doc)
    # Each replica: 1 H100 (700 W) x PUE 1.15 x 30 gCO2e/kWh / 1000 on oslo (the only EEA
    # module, whose power budget holds one replica).
    assert [(a["module"], a["replicas"]) for a in c["assignments"]] == [("oslo", 1)]
    assert c["carbon"]["gramsPerHour"] == pytest.approx(700 * 1.15 * 30 / 1000)
    assert c["carbon"]["meanRttMs"] == pytest.approx(c["latencyMs"]["eu-west"])


def test_measured_rtt_file_overrides_the_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rtt = tmp_path / "rtt.csv"
    rtt.write_text("region,module,rttMs\neu-west,oslo,61.5\n")
    code, doc, _ = place(capsys, "--rtt", str(rtt))
    assert code == 0
    c = chat(doc)
    assert c["assignments"] == [] and c["unplacedReplicas"] == 3
    assert c["carbon"]["gramsPerHour"] == 0 and c["carbon"]["meanRttMs"] is None
    assert c["explanation"]["oslo"] == "rejected: latency > 50 ms for eu-west"


def test_matrix_file_and_explanation_tags(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rtt = tmp_path / "rtt.csv"
    rtt.write_text("region,oslo\neu-west,21.0\n")
    code, doc, _ = place(capsys, "--rtt", str(rtt))
    assert code == 0
    c = chat(doc)
    assert c["latencyMs"] == {"eu-west": 21.0}
    assert "Latency 21.0 ms [measured]" in c["explanation"]["oslo"]


def test_profile_changes_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    _, brief, _ = place(capsys)
    _, p95, _ = place(capsys, "--rtt-profile", "calibrated-p95")
    gap = RTT_PROFILES["calibrated-p95"].overhead_ms - RTT_PROFILES["brief"].overhead_ms
    assert chat(p95)["latencyMs"]["eu-west"] == pytest.approx(
        chat(brief)["latencyMs"]["eu-west"] + gap, abs=1e-3
    )
    assert "[model]" in chat(p95)["explanation"]["oslo"]


def test_unknown_names_are_warnings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rtt = tmp_path / "rtt.csv"
    rtt.write_text("region,module,rttMs\neu-west,oslo,20\nmars,oslo,1\neu-west,atlantis,2\n")
    code, _, err = place(capsys, "--rtt", str(rtt))
    assert code == 0
    assert f"warning: {rtt}: unknown demand regions: mars" in err
    assert f"warning: {rtt}: unknown modules: atlantis" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("region,module,rttMs\neu-west,oslo,-1\n", "rtt.csv: line 2: RTT must be"),
        (None, "rtt.csv: No such file or directory"),
    ],
)
def test_bad_rtt_file_is_invalid_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, expected: str
) -> None:
    rtt = tmp_path / "rtt.csv"
    if content is not None:
        rtt.write_text(content)
    code, doc, err = place(capsys, "--rtt", str(rtt))
    assert code == 1 and doc == {}
    assert "error: invalid input:" in err and expected in err


def test_table_shows_the_carbon_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["place", "-f", str(SMALL)]) == 0
    out = capsys.readouterr().out
    assert "  carbon: 24 gCO2e/h now, 24 latency-only; mean RTT 20.8 ms vs 20.8 ms" in out
