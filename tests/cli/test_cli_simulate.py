"""aifactoryctl simulate and what-if from the command line: files in, JSON and reports out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.simulation import gcp30

from aifactory.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "simulation"
CARBON = str(SAMPLE / "carbon-2022.csv.gz")
SHORT = ["--start", "2022-01-10T00:00Z", "--end", "2022-01-10T06:00Z", "--workers", "1"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_reads_rtt_carbon_and_demand_files_and_prints_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    demand = tmp_path / "demand.csv"
    demand.write_text(
        "time,region,requestsPerSecond,deployment\n"
        "2022-01-10T00:00Z,eu-west,120,\n"
        "2022-01-10T03:00Z,eu-west,480,eu-chat/eu-assistant\n"
        "2022-01-10T00:00Z,us-east,900,\n"
    )
    rtt = tmp_path / "rtt.csv"
    rtt.write_text("region,module,rttMs\neu-west,paris,11.8\neu-west,oslo,25\n")
    code, out, err = run(
        capsys,
        "simulate",
        "-f",
        str(SAMPLE),
        "--carbon",
        CARBON,
        "--demand",
        str(demand),
        "--rtt",
        str(rtt),
        "--policies",
        "engine,latency-only",
        "-o",
        "json",
        *SHORT,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["period"] == {
        "start": "2022-01-10T00:00:00Z",
        "end": "2022-01-10T06:00:00Z",
        "steps": 6,
        "stepSeconds": 3600.0,
    }
    assert [p["policy"] for p in doc["policies"]] == ["engine", "latency-only"]
    assert doc["inputs"]["demand"] == f"csv: {demand}"
    assert doc["inputs"]["rtt"] == str(rtt)
    assert {m["zone"] for m in doc["inputs"]["modules"]} >= {"FR", "NO-NO1", "CA-QC"}
    assert len(doc["series"]["policies"]["engine"]["gCO2e"]) == 6
    assert doc["comparison"][0]["baseline"] == "latency-only"
    for p in doc["policies"]:
        assert p["sovereigntyViolations"] == p["sloViolations"] == p["capacityViolations"] == 0


def test_simulate_writes_outputs_and_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        "-f",
        str(SAMPLE),
        "--carbon",
        CARBON,
        "--policies",
        "engine,static",
        "--event",
        "2022-01-10T02:00Z module-down oslo",
        "--out",
        str(tmp_path / "out"),
        "--report",
        str(tmp_path / "out" / "report.html"),
        *SHORT,
    )
    assert code == 0
    assert "kgCO2e" in out and "Against static, the engine" in out
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"summary.json", "summary.csv", "series.csv", "report.html", "carbon.svg"} <= names
    assert "2022-01-10T02:00Z module-down oslo" in (tmp_path / "out" / "report.html").read_text()


def test_simulate_on_gcp_zones_with_a_zone_map_and_a_measured_matrix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The 30-zone test fleet as files: modules without annotations, zones from --zones."""
    import yaml

    scenario = gcp30.scenario()
    docs = []
    zones = ["module,zone"]
    for m in scenario.modules:
        manifest = m.to_manifest()
        zones.append(
            f"{m.name},{manifest['metadata']['annotations'].pop('aifactory.dev/grid-zone')}"
        )
        docs.append(manifest)
    docs += [d.to_manifest() for d in scenario.deployments]
    docs += [p.to_manifest() for p in scenario.policies]
    docs += [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": dict(labels)}}
        for n, labels in scenario.namespaces.items()
    ]
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "zones.csv").write_text("\n".join(zones) + "\n")
    rtt = gcp30.write_rtt_csv(tmp_path / "rtt.csv")
    code, out, err = run(
        capsys,
        "simulate",
        "-f",
        str(tmp_path / "fleet.yaml"),
        "--carbon",
        str(gcp30.CARBON),
        "--zones",
        str(tmp_path / "zones.csv"),
        "--rtt",
        str(rtt),
        "--start",
        "2022-01-05",
        "--end",
        "2022-01-05T04:00Z",
        "--policies",
        "engine",
        "--workers",
        "1",
        "-o",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert all(m["zone"] for m in doc["inputs"]["modules"])
    assert "warnings" in doc["inputs"] and not doc["inputs"]["warnings"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policies", "greedy"], "unknown policy"),
        (["--event", "soon module-down oslo"], "not an ISO 8601 time"),
        (["--event", "2022-01-10T01:00Z cordon atlantis"], "no module atlantis"),
        (["--demand", "/nonexistent.csv"], "cannot read"),
        (["--start", "2022-01-10T06:00Z"], "the period is empty"),
    ],
)
def test_simulate_bad_input_exits_1(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code, _, err = run(capsys, "simulate", "-f", str(SAMPLE), "--carbon", CARBON, *SHORT, *extra)
    assert code == 1
    assert message in err


def test_what_if_offline_table_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "what-if", "-f", str(SAMPLE), "--lose-module", "montreal")
    assert code == 0
    assert "what if: lose-module montreal" in out
    assert "total:" in out and "at once" in out
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: aifactory.dev/v1alpha1\nkind: SovereigntyPolicy\n"
        "metadata: {name: no-canada}\n"
        "spec: {namespaceSelector: {}, deniedCountries: [CA], enforcement: Enforce}\n"
    )
    code, out, _ = run(
        capsys,
        "what-if",
        "-f",
        str(SAMPLE),
        "--policy",
        str(policy),
        "--scale-demand",
        "us-east=1.5",
        "-o",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["changes"] == ["apply SovereigntyPolicy no-canada", "scale demand in us-east x1.5"]
    copilot = next(d for d in doc["deployments"] if d["deployment"] == "us-apps/us-copilot")
    assert copilot["newlyForbidden"] and "montreal" not in copilot["after"]


def test_what_if_bad_change_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "what-if", "-f", str(SAMPLE), "--cordon", "atlantis")
    assert code == 1 and "no module atlantis" in err


def test_directories_are_read_as_kubectl_reads_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """-f DIR reads that directory only (samples/ does not include samples/simulation/, a
    fleet of its own); -R recurses, and then both fleets' modules clash."""
    top = [d for f in sorted((REPO / "samples").glob("*.yaml")) for d in _documents(f)]
    code, out, _ = run(capsys, "validate", "-f", str(REPO / "samples"))
    assert code == 0 and out.startswith(f"{len(top)} documents: {len(top)} valid")
    code, out, err = run(capsys, "validate", "-f", str(REPO / "samples"), "-R")
    assert code == 1 and "duplicate AIFactoryModule paris" in out + err


def _documents(path: Path) -> list[object]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]
