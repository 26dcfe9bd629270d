"""`aifactoryctl fleet | explain | cordon | uncordon | drain` against the real hub.

The operator runs for real (admin kubeconfig, short intervals) so status is what users see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.chart.conftest import apply_samples
from tests.chart.helpers import REPO
from tests.e2e.helpers import (
    OperatorProcess,
    condition,
    delete_all_deployments,
    get_json,
    operator_env,
    small_deployment,
    wait_for,
)

from aifactory.cli.day2 import DRAIN_ANNOTATION
from aifactory.cli.main import main

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def hub(fleet: Fleet, kubectl: Any) -> Iterator[Path]:
    """Samples placed by a running operator; yields the hub kubeconfig the CLI uses."""
    fleet.register_members()
    apply_samples(fleet)
    kubeconfig = fleet.kubeconfig(HUB)
    op = OperatorProcess(
        operator_env(kubeconfig, AIFACTORY_WEBHOOK_MANAGED="false"),
        fleet.log_dir / "operator-day2.log",
    )
    op.start()
    try:
        kubectl("apply", "--server-side", "-f", str(REPO / "samples" / "deployments.yaml"))
        kubectl(
            "wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=180s", timeout=200
        )
        yield kubeconfig
    finally:
        for m in ("reykjavik", "oslo", "paris"):
            kubectl(
                "patch",
                "afm",
                m,
                "--type=merge",
                "-p",
                json.dumps(
                    {
                        "metadata": {"annotations": {DRAIN_ANNOTATION: None}},
                        "spec": {"schedulable": True},
                    }
                ),
                check=False,
            )
        delete_all_deployments(kubectl)
        op.stop()


def ctl(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *args: str) -> tuple[int, str]:
    code = main([*args, "--kubeconfig", str(kubeconfig)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _placed(kubectl: Any, name: str) -> dict[str, Any] | None:
    obj = get_json(kubectl, "infd", "-n", "batch", name)
    c = condition(obj, "Placed")
    ok = (
        c
        and c["status"] == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )
    return obj if ok else None


def test_fleet_lists_modules_with_readiness_gpus_and_carbon(
    hub: Path, capsys: pytest.CaptureFixture[str], kubectl: Any
) -> None:
    code, out = ctl(capsys, hub, "fleet")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["MODULE", "COUNTRY", "READY", "STATE"]
    names = [line.split()[0] for line in lines[: len(lines) - 2]]
    assert names == sorted(m["metadata"]["name"] for m in get_json(kubectl, "afm")["items"])
    assert "7/7 modules Ready" in out
    code, out = ctl(capsys, hub, "fleet", "-o", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    live = get_json(kubectl, "afm", "reykjavik")["status"]
    assert rows["reykjavik"]["gpusFree"] == live["gpusFree"]
    assert rows["reykjavik"]["carbonIntensity"] == 28
    assert rows["reykjavik"]["ready"] == "True" and rows["reykjavik"]["schedulable"] is True


def test_explain_shows_status_and_why_each_module_was_chosen_or_rejected(
    hub: Path, capsys: pytest.CaptureFixture[str], kubectl: Any
) -> None:
    code, out = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant")
    assert code == 0, out
    status = get_json(kubectl, "infd", "-n", "eu-chat", "eu-assistant")["status"]
    assert condition({"status": status}, "Placed")["message"] in out
    assert "dallas" in out and "rejected" in out and "outside allowed jurisdictions EU,EEA" in out
    code, out = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant", "-o", "json")
    report = json.loads(out)
    verdicts = {m["module"]: m for m in report["modules"]}
    assert set(verdicts) == {m["metadata"]["name"] for m in get_json(kubectl, "afm")["items"]}
    chosen = {p["module"]: p["replicas"] for p in status["placements"]}
    assert {m: v["replicas"] for m, v in verdicts.items() if v["verdict"] == "selected"} == chosen
    assert verdicts["singapore"]["verdict"] == "rejected"
    # the operator's own explanation from status comes first; the engine fills the rest
    assert set(status.get("explanation", {})) == {
        m for m, v in verdicts.items() if v["source"] == "status"
    }
    assert all(v["source"] == "status" for v in verdicts.values())  # 7 modules <= 64 kept
    assert report["conditions"] == status["conditions"]


def test_cordon_keeps_what_runs_and_places_nothing_new(
    hub: Path, capsys: pytest.CaptureFixture[str], kubectl: Any
) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("day2-first")))
    first = wait_for("day2-first placed", lambda: _placed(kubectl, "day2-first"), timeout=60)
    favourite = first["status"]["placements"][0]["module"]

    code, out = ctl(capsys, hub, "cordon", favourite)
    assert code == 0 and "cordoned" in out
    assert get_json(kubectl, "afm", favourite)["spec"]["schedulable"] is False
    code, out = ctl(capsys, hub, "fleet", "-o", "json")
    assert {r["name"]: r["schedulable"] for r in json.loads(out)}[favourite] is False

    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("day2-second")))
    second = wait_for("day2-second placed", lambda: _placed(kubectl, "day2-second"), timeout=60)
    assert favourite not in {p["module"] for p in second["status"]["placements"]}
    # running replicas stay on the cordoned module
    still = get_json(kubectl, "infd", "-n", "batch", "day2-first")["status"]["placements"]
    assert favourite in {p["module"] for p in still}
    code, out = ctl(capsys, hub, "explain", "-n", "batch", "day2-second", "-o", "json")
    verdict = {m["module"]: m for m in json.loads(out)["modules"]}[favourite]
    assert verdict["verdict"] == "rejected" and "cordoned" in verdict["detail"]

    code, out = ctl(capsys, hub, "uncordon", favourite)
    assert code == 0 and "uncordoned" in out
    assert get_json(kubectl, "afm", favourite)["spec"]["schedulable"] is True
    kubectl(
        "delete", "infd", "-n", "batch", "day2-first", "day2-second", "--timeout=60s", timeout=90
    )


def test_drain_cordons_marks_and_lists_the_replicas_to_move(
    hub: Path, capsys: pytest.CaptureFixture[str], kubectl: Any
) -> None:
    status = get_json(kubectl, "infd", "-n", "eu-chat", "eu-assistant")["status"]
    module = status["placements"][0]["module"]
    replicas = status["placements"][0]["replicas"]
    code, out = ctl(capsys, hub, "drain", module)
    assert code == 0, out
    obj = get_json(kubectl, "afm", module)
    assert obj["spec"]["schedulable"] is False
    assert obj["metadata"]["annotations"][DRAIN_ANNOTATION] == "true"
    assert f"eu-chat/eu-assistant: {replicas}" in out
    code, out = ctl(capsys, hub, "fleet", "-o", "json")
    assert {r["name"]: r for r in json.loads(out)}[module]["draining"] is True
    code, out = ctl(capsys, hub, "uncordon", module)
    obj = get_json(kubectl, "afm", module)
    assert obj["spec"]["schedulable"] is True
    assert DRAIN_ANNOTATION not in obj["metadata"].get("annotations", {})


def test_errors_are_one_line_and_exit_1(
    hub: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = ctl(capsys, hub, "cordon", "atlantis")
    assert code == 1 and "error: get aifactorymodule atlantis: HTTP 404" in out
    code, out = ctl(capsys, hub, "explain", "-n", "batch", "nope")
    assert code == 1 and "HTTP 404" in out
    missing = tmp_path / "missing.kubeconfig"
    assert main(["fleet", "--kubeconfig", str(missing)]) == 1
    assert "cannot load kubeconfig" in capsys.readouterr().err


def test_fleet_and_explain_fit_100_columns_one_reason_per_line(
    hub: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ("fleet",),
        ("explain", "-n", "eu-chat", "eu-assistant"),
        ("explain", "-n", "ml-platform", "support-classifier"),
    ):
        code, out = ctl(capsys, hub, *args)
        assert code == 0, out
        too_long = [line for line in out.splitlines() if len(line) > 100]
        assert not too_long, too_long
    code, out = ctl(capsys, hub, "fleet")
    assert out.splitlines()[0].split("  ")[0:1] == ["MODULE"]
    assert "SOURCE" in out.splitlines()[0]
    code, out = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant")
    lines = out.splitlines()
    # a rejected module's reason sits on its own line under it
    dallas = next(i for i, line in enumerate(lines) if line.startswith("dallas "))
    assert lines[dallas + 1].strip() == "outside allowed jurisdictions EU,EEA"
    # costs say where each term came from
    assert any("(model)" in line and "(spec)" in line for line in lines)
    code, wide = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant", "-o", "wide")
    assert "scores (0-100)" in wide and "GPUs (live)" in wide and len(wide) > len(out)


def test_explain_re_evaluates_the_running_placement_live(
    hub: Path, capsys: pytest.CaptureFixture[str], kubectl: Any
) -> None:
    code, out = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant", "-o", "json")
    assert code == 0, out
    report = json.loads(out)
    assert set(report["sources"]) == {"status", "live"}
    assert report["stability"].startswith(("kept", "replaced", "repaired"))
    chosen = {p["module"]: p["replicas"] for p in report["placements"]}
    for m in report["modules"]:
        live = m["live"]
        if m["module"] in chosen:
            # the live engine sees the running placement the status reports
            assert live["verdict"] == "selected", m
            assert {c["region"] for c in m["costs"]} == set(
                next(p for p in report["placements"] if p["module"] == m["module"])["regions"]
            )
            assert all(c["latencySource"] == "model" for c in m["costs"])
            assert all(c["carbonSource"] == "spec" for c in m["costs"])
    # a module cordoned since the decision: status still says what the operator decided,
    # the live re-evaluation says it is cordoned now
    status = get_json(kubectl, "infd", "-n", "eu-chat", "eu-assistant")["status"]
    spare = next(
        m
        for m, text in status["explanation"].items()
        if text.startswith("not selected") and m not in chosen
    )
    assert ctl(capsys, hub, "cordon", spare)[0] == 0
    try:
        _, out = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant", "-o", "json")
        verdict = {m["module"]: m for m in json.loads(out)["modules"]}[spare]
        assert verdict["source"] == "status" and verdict["verdict"] == "not selected"
        assert verdict["live"]["verdict"] == "rejected"
        assert "cordoned" in verdict["live"]["detail"]
        _, text = ctl(capsys, hub, "explain", "-n", "eu-chat", "eu-assistant")
        assert "now (live): rejected: module cordoned" in text
    finally:
        ctl(capsys, hub, "uncordon", spare)
