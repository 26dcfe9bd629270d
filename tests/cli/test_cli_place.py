"""`aifactoryctl place`: the JSON contract, the table, and errors that point at the input."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aifactory.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
DATA = Path(__file__).parent / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["samples", "small"])
def manifests(request: pytest.FixtureRequest) -> Path:
    path = SAMPLES if request.param == "samples" else DATA / "small"
    if not path.is_dir():
        pytest.skip(f"{path} not there")
    return path


def test_json_contract(capsys: pytest.CaptureFixture[str], manifests: Path) -> None:
    code, out, _ = run(capsys, "place", "-f", str(manifests), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"placements", "modules", "totalCost"}
    assert isinstance(doc["totalCost"], float | int)
    for p in doc["placements"]:
        assert set(p) >= {
            "deployment",
            "replicas",
            "unplacedReplicas",
            "assignments",
            "explanation",
        }
        assert "/" in p["deployment"]
        placed = sum(a["replicas"] for a in p["assignments"])
        assert placed + p["unplacedReplicas"] == p["replicas"]
        for a in p["assignments"]:
            assert set(a) >= {"module", "replicas", "regions"}
            assert not a["regions"] or sum(a["regions"].values()) == a["replicas"]
        for why in p["explanation"].values():
            assert why.startswith(("selected: ", "not selected: ", "rejected: "))
    for m in doc["modules"]:
        assert set(m) >= {"name", "gpusUsed", "gpusFree"}
        assert m["gpusUsed"] >= 0 and m["gpusFree"] >= 0
    assert doc["totalCost"] == pytest.approx(sum(p["cost"] for p in doc["placements"]))


def test_samples_place_every_replica(capsys: pytest.CaptureFixture[str]) -> None:
    if not SAMPLES.is_dir():
        pytest.skip("no samples")
    _, out, _ = run(capsys, "place", "-f", str(SAMPLES), "-o", "json")
    doc = json.loads(out)
    assert all(p["unplacedReplicas"] == 0 for p in doc["placements"])
    assert doc["totalCost"] < 1000


def test_small_fixture_decisions(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "place", "-f", str(DATA / "small"), "-o", "json")
    doc = json.loads(out)
    chat = next(p for p in doc["placements"] if p["deployment"] == "eu/chat")
    assert chat["explanation"]["dallas"] == "rejected: outside allowed jurisdictions EU,EEA"
    assert [a["module"] for a in chat["assignments"]] == ["oslo"]
    assert {m["name"]: m["gpusUsed"] for m in doc["modules"]} == {"dallas": 8, "oslo": 8}


@pytest.mark.parametrize("mode", ["fleet", "incremental", "operator"])
def test_every_mode_says_which_it_shows(capsys: pytest.CaptureFixture[str], mode: str) -> None:
    _, out, _ = run(capsys, "place", "-f", str(SAMPLES), "--mode", mode)
    assert out.splitlines()[0].startswith(f"mode: {mode} (")
    assert max(len(line) for line in out.splitlines()) <= 100
    _, out, _ = run(capsys, "place", "-f", str(SAMPLES), "--mode", mode, "-o", "json")
    doc = json.loads(out)
    assert doc["mode"] == mode
    assert all(p["unplacedReplicas"] == 0 for p in doc["placements"])


def test_operator_mode_on_the_samples_is_their_incremental_placement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No fleet-wide plan beats the samples' incremental placement by the hysteresis, so the
    operator settles where its placement loop first put them (what `make demo` shows)."""
    runs = {}
    for mode in ("incremental", "operator"):
        _, out, _ = run(capsys, "place", "-f", str(SAMPLES), "--mode", mode, "-o", "json")
        runs[mode] = {
            p["deployment"]: {a["module"]: a["replicas"] for a in p["assignments"]}
            for p in json.loads(out)["placements"]
        }
    assert runs["operator"] == runs["incremental"]
    assert runs["operator"]["eu-chat/eu-assistant"] == {"oslo": 5, "paris": 24}
    _, out, _ = run(capsys, "place", "-f", str(SAMPLES), "--mode", "operator")
    out = " ".join(out.split())  # lines are wrapped at 100 columns
    assert "0 rebalance round(s) (hysteresis 10%, disruption budget 2)" in out
    assert "stays where it was first placed; kept: a new placement would lower cost by" in out


def test_modes_and_repeated_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (DATA / "small").glob("*.yaml"))
    argv = ["place", *[x for f in files for x in ("-f", f)], "-o", "json"]
    _, fleet_out, _ = run(capsys, *argv)
    _, again, _ = run(capsys, *argv, "--mode", "fleet")
    _, incremental, _ = run(capsys, *argv, "--mode", "incremental")
    assert fleet_out == again  # deterministic
    assert json.loads(fleet_out)["solver"] != json.loads(incremental)["solver"]
    assert json.loads(fleet_out)["totalCost"] <= json.loads(incremental)["totalCost"] + 1e-9


def test_table_is_readable(capsys: pytest.CaptureFixture[str], manifests: Path) -> None:
    code, out, _ = run(capsys, "place", "-f", str(manifests))
    assert code == 0
    lines = out.splitlines()
    # the first line says which mode the output shows, the table follows a blank line
    assert lines[0].startswith("mode: fleet (every deployment re-solved together")
    header = lines.index("") + 1
    assert lines[header].split() == ["DEPLOYMENT", "PRIO", "PLACED", "MODULES", "CARBON", "COST"]
    assert max(len(line) for line in lines) <= 100
    assert "modules are available" in out
    assert "MODULE" in out and "REGIONS" in out
    assert "rejected:" in out
    assert "GPUS USED" in out
    assert lines[-1].startswith("total cost: ")
    assert "gap " in lines[-1] and "lower bound " in lines[-1]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            None,
            [
                "invalid.yaml: document 2 (AIFactoryModule broken)",
                "spec.capacity.gpus[0].count",
                "greater than or equal to 0",
            ],
        ),
        (
            "kind: InferenceDeployment\nmetadata: {name: x}\nspec: {model: {name: m}}\n",
            ["bad.yaml: document 1 (InferenceDeployment x)", "spec.model.image", "Field required"],
        ),
        (
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n- just\n- a list\n",
            ["bad.yaml: document 2: expected a mapping"],
        ),
        ("a: [unclosed\n", ["bad.yaml: invalid YAML"]),
    ],
)
def test_invalid_input_names_file_document_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, expected: list[str]
) -> None:
    if content is None:
        target = DATA / "invalid.yaml"
    else:
        target = tmp_path / "bad.yaml"
        target.write_text(content)
    code, out, err = run(capsys, "place", "-f", str(target))
    assert code != 0
    assert out == ""
    for text in expected:
        assert text in err


def test_duplicate_and_missing_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(DATA / "small" / "fleet.yaml", tmp_path / "a.yaml")
    shutil.copy(DATA / "small" / "fleet.yaml", tmp_path / "b.yaml")
    code, _, err = run(capsys, "place", "-f", str(tmp_path))
    assert code == 1 and "duplicate AIFactoryModule oslo" in err
    code, _, err = run(capsys, "place", "-f", str(tmp_path / "nothing-here"))
    assert code == 1 and "nothing-here" in err


def test_crds_subcommand_delegates(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "crds", "--out", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir())
    assert "wrote" in out


def test_parser_lists_subcommands() -> None:
    text = build_parser().format_help()
    assert "place" in text and "crds" in text


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "aifactoryctl"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aifactory.cli.main"]
    proc = subprocess.run(
        [*cmd, "place", "-f", str(DATA / "small"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "totalCost" in json.loads(proc.stdout)


def test_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "\n---\n".join(p.read_text() for p in sorted((DATA / "small").glob("*.yaml")))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, _ = run(capsys, "place", "-f", "-", "-o", "json")
    assert code == 0
    assert {p["deployment"] for p in json.loads(out)["placements"]} == {"eu/chat", "jobs/batch"}
