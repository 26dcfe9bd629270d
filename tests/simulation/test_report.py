"""The report writer: JSON and CSV shapes, plots as PNG and SVG, a self-contained HTML page."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifactory.simulation import SimulationConfig, build_timeline, load_scenario, simulate
from aifactory.simulation.replay import PolicyResult
from aifactory.simulation.report import (
    comparison,
    document,
    plots,
    sentences,
    summary_table_md,
    tradeoff_figure,
    write_html,
    write_outputs,
)
from aifactory.simulation.series import load_carbon

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "simulation"
T0 = datetime(2022, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def run() -> tuple[list[PolicyResult], Any, SimulationConfig]:
    scenario = load_scenario([SAMPLE])
    config = SimulationConfig.from_operator(policies=("engine", "latency-only", "static"))
    built = build_timeline(
        scenario,
        config,
        start=T0,
        end=T0 + timedelta(hours=6),
        carbon=load_carbon([SAMPLE / "carbon-2022.csv.gz"]),
    )
    return simulate(scenario, built.timeline, config), built, config


def test_outputs_and_report(
    run: tuple[list[PolicyResult], Any, SimulationConfig], tmp_path: Path
) -> None:
    results, built, config = run
    times = built.timeline.step_times
    doc = document(results, config=config, step_times=times, inputs={"warnings": []}, series=True)
    images = write_outputs(tmp_path, doc, results, times, config.step_s)
    for name in ("summary.json", "simulation.json", "summary.csv", "series.csv"):
        assert (tmp_path / name).is_file(), name
    for name in ("carbon", "latency", "tradeoff"):
        assert [p.suffix for p in images[name]] == [".png", ".svg"]
        assert images[name][0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in images[name][1].read_bytes()[:400]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "series" not in summary and [p["policy"] for p in summary["policies"]] == [
        "engine",
        "latency-only",
        "static",
    ]
    full = json.loads((tmp_path / "simulation.json").read_text())
    assert len(full["series"]["time"]) == 6
    assert len(full["series"]["policies"]["engine"]["gCO2e"]) == 6
    rows = list(csv.DictReader((tmp_path / "series.csv").open()))
    assert len(rows) == 6 * 3 and rows[0]["time"] == "2022-06-01T00:00:00Z"
    assert float(rows[0]["gCO2e"]) > 0
    head = next(csv.reader((tmp_path / "summary.csv").open()))
    assert {"policy", "kgCO2e", "meanRttMs", "p95RttMs", "withinSloShare"} <= set(head)
    page = tmp_path / "report.html"
    write_html(page, doc, images)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "Against latency-only, the engine" in text
    assert "held at every step of every policy" in text
    assert "Electricity Maps" in text and "GeoNames" in text


def test_plots_are_reproducible(
    run: tuple[list[PolicyResult], Any, SimulationConfig], tmp_path: Path
) -> None:
    results, built, _ = run
    a = plots(results, built.timeline.step_times, tmp_path / "a")
    b = plots(results, built.timeline.step_times, tmp_path / "b")
    for name in a:
        svg_a, svg_b = a[name][1].read_bytes(), b[name][1].read_bytes()
        assert svg_a == svg_b, name


def summary(policy: str, kg: float, rtt: float, moved: int = 0) -> dict[str, Any]:
    return {
        "policy": policy,
        "kgCO2e": kg,
        "meanRttMs": rtt,
        "p95RttMs": rtt * 2,
        "withinSloShare": 1.0,
        "replicasMoved": moved,
        "unplacedReplicaHours": 0.0,
        "sovereigntyViolations": 0,
        "sloViolations": 0,
        "capacityViolations": 0,
    }


def test_comparison_says_what_the_engine_saved_and_what_it_cost() -> None:
    rows = comparison(
        [
            summary("engine", 60.0, 12.0, 5),
            summary("latency-only", 100.0, 9.0),
            summary("carbon-only", 50.0, 20.0),
        ]
    )
    assert rows[0]["baseline"] == "latency-only"
    assert rows[0]["kgCO2eSaved"] == 40.0 and rows[0]["savedShare"] == 0.4
    assert rows[0]["meanRttDeltaMs"] == 3.0
    text = sentences(rows)
    assert text[0] == (
        "Against latency-only, the engine saved 40 kgCO2e (40.0%), at 3.0 ms more mean RTT "
        "(+6.0 ms at p95); 5 more replicas moved."
    )
    assert text[1].startswith(
        "Against carbon-only, the engine emitted 10 kgCO2e (20.0%) more, with 8.0 ms less"
    )
    assert comparison([summary("static", 1.0, 1.0)]) == []


def test_summary_table_in_markdown() -> None:
    table = summary_table_md([summary("engine", 1234.5, 9.87)])
    lines = table.splitlines()
    assert lines[0].startswith("| policy | kgCO2e |") and lines[1].startswith("| --- |")
    assert "| engine | 1,234.5 |" in lines[2]


def test_tradeoff_labels_a_point_below_it_when_another_sits_just_above() -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = tradeoff_figure(
        [
            summary("engine", 91_400.0, 9.12),
            summary("static", 88_400.0, 9.04),
            summary("latency-only", 167_700.0, 6.23),
            summary("carbon-only", 46_600.0, 16.28),
            {**summary("unserved", 1.0, 0.0), "meanRttMs": None},
        ],
        {},
    )
    offsets = {a.get_text(): a.xyann for a in fig.axes[0].texts}
    plt.close(fig)
    assert set(offsets) == {"engine", "static", "latency-only", "carbon-only"}
    # static is 3 t under engine at almost the same RTT: its label goes below its point
    assert offsets["static"][1] < 0
    assert all(offsets[n][1] > 0 for n in ("engine", "latency-only", "carbon-only"))
