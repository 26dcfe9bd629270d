"""End to end: the operator places the samples on the real local fleet and keeps them right."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack.fleet import HUB, Fleet
from tests.e2e.helpers import (
    OperatorProcess,
    cluster_of,
    condition,
    get_json,
    pinned_to_dallas,
    running_pods,
    wait_for,
)

from aifactory.api.jurisdictions import EEA
from aifactory.labels import GPU_RESOURCE, MODULE_LABEL

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
OWNER = "aifactory.dev/inference-deployment"


def sample_deployments() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((REPO / "samples" / "deployments.yaml").read_text()) if d]


def member_deployments(kubectl: Any, fleet: Fleet, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, Deployment) for every member Deployment owned by InferenceDeployment `name`."""
    out = []
    for cluster in fleet.clusters:
        items = get_json(kubectl, "deployments", "-A", "-l", f"{OWNER}={name}", cluster=cluster)
        out += [(cluster, d) for d in items["items"]]
    return out


def infd(kubectl: Any, ns: str, name: str) -> dict[str, Any]:
    return get_json(kubectl, "infd", "-n", ns, name)


def is_ready(obj: dict[str, Any]) -> bool:
    c = condition(obj, "Ready")
    gen = obj["metadata"]["generation"]
    return bool(c and c["status"] == "True" and obj["status"].get("observedGeneration") == gen)


@pytest.fixture(scope="module")
def samples_applied(operator: OperatorProcess, kubectl: Any) -> list[dict[str, Any]]:
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(REPO / "samples" / "deployments.yaml"),
    )
    kubectl("wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=180s", timeout=200)
    return sample_deployments()


def test_samples_run_on_kwok_gpu_nodes_of_the_chosen_modules(
    samples_applied: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> None:
    for d in samples_applied:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        status = infd(kubectl, ns, name)["status"]
        assert status["readyReplicas"] == status["replicas"] > 0
        for p in status["placements"]:
            cluster = cluster_of(kubectl, p["module"])
            running = running_pods(kubectl, ns, name, p["module"])
            assert len(running) == p["replicas"], (name, p)
            for pod in running:
                node = get_json(kubectl, "node", pod["spec"]["nodeName"], cluster=cluster)
                assert node["metadata"]["labels"][MODULE_LABEL] == p["module"]
                limits = pod["spec"]["containers"][0]["resources"]["limits"]
                assert limits[GPU_RESOURCE] == str(d["spec"]["resources"]["gpusPerReplica"])


def test_eu_restricted_deployment_stays_in_eu_and_eea(
    samples_applied: list[dict[str, Any]], kubectl: Any
) -> None:
    status = infd(kubectl, "eu-chat", "eu-assistant")["status"]
    assert status["placements"]
    for p in status["placements"]:
        country = get_json(kubectl, "afm", p["module"])["spec"]["location"]["country"]
        assert country in EEA, f"{p['module']} ({country}) is outside EU/EEA"


def test_pinning_eu_deployment_to_a_us_module_is_rejected_at_admission(
    samples_applied: list[dict[str, Any]], kubectl: Any
) -> None:
    eu = next(d for d in samples_applied if d["metadata"]["name"] == "eu-assistant")
    out = kubectl("apply", "-f", "-", input=json.dumps(pinned_to_dallas(eu)), check=False)
    assert out.returncode != 0
    policy = yaml.safe_load_all((REPO / "samples" / "policies.yaml").read_text())
    enforce = next(
        p["metadata"]["name"]
        for p in policy
        if p and p["spec"].get("enforcement", "Enforce") == "Enforce"
    )
    assert "admission webhook" in out.stderr
    assert enforce in out.stderr and "dallas" in out.stderr


def test_more_demand_adds_replicas(
    samples_applied: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> None:
    before = infd(kubectl, "ml-platform", "support-classifier")["status"]["replicas"]
    regions = infd(kubectl, "ml-platform", "support-classifier")["spec"]["demand"]["regions"]
    doubled = [{**r, "requestsPerSecond": r["requestsPerSecond"] * 2} for r in regions]
    kubectl(
        "patch",
        "infd",
        "-n",
        "ml-platform",
        "support-classifier",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"demand": {"regions": doubled}}}),
    )

    def scaled() -> dict[str, Any] | None:
        obj = infd(kubectl, "ml-platform", "support-classifier")
        return obj if is_ready(obj) and obj["status"]["replicas"] > before else None

    obj = wait_for("support-classifier scaled up and Ready", scaled, timeout=120)
    members = member_deployments(kubectl, fleet, "support-classifier")
    assert sum(d["spec"]["replicas"] for _, d in members) == obj["status"]["replicas"]
    assert sum(d["status"].get("readyReplicas", 0) for _, d in members) == obj["status"]["replicas"]


def test_deleting_a_deployment_removes_every_member_object(
    samples_applied: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> None:
    assert member_deployments(kubectl, fleet, "nightly-summarizer")
    kubectl("delete", "infd", "-n", "batch", "nightly-summarizer", "--timeout=60s", timeout=90)
    for cluster in fleet.clusters:
        for kind in ("deployments", "services"):
            left = get_json(
                kubectl, kind, "-A", "-l", f"{OWNER}=nightly-summarizer", cluster=cluster
            )
            assert left["items"] == [], f"{kind} left in {cluster}"


SECRET_TOKEN = "aifactory-e2e-very-secret-token-0123456789"


def _bad_module(name: str, secret: str) -> dict[str, Any]:
    base = next(
        d
        for d in yaml.safe_load_all((REPO / "samples" / "modules.yaml").read_text())
        if d and d["metadata"]["name"] == "paris"
    )
    module = copy.deepcopy(base)
    module["metadata"] = {"name": name}
    module["spec"]["cluster"] = {
        "kubeconfigSecretRef": {
            "namespace": "aifactory-system",
            "name": secret,
            "key": "kubeconfig",
        }
    }
    return module


@pytest.mark.parametrize(
    ("kubeconfig", "reason"),
    [
        (  # well-formed, but the server does not exist
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "x",
                    "clusters": [
                        {
                            "name": "x",
                            "cluster": {
                                "server": "https://127.0.0.1:1",
                                "insecure-skip-tls-verify": True,
                            },
                        }
                    ],
                    "users": [{"name": "x", "user": {"token": SECRET_TOKEN}}],
                    "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                }
            ),
            "ClusterUnreachable",
        ),
        (f"token: {SECRET_TOKEN}\nthis is: [not a kubeconfig", "InvalidKubeconfig"),
    ],
    ids=["unreachable-server", "garbage"],
)
def test_bad_kubeconfig_marks_only_that_module_unreachable_and_leaks_nothing(
    operator: OperatorProcess, kubectl: Any, kubeconfig: str, reason: str
) -> None:
    name = f"broken-{reason.lower()}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "aifactory-system"},
        "data": {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
    }
    kubectl("apply", "-f", "-", input=json.dumps(secret))
    kubectl("apply", "-f", "-", input=json.dumps(_bad_module(name, name)))
    try:

        def reachable_false() -> dict[str, Any] | None:
            c = condition(get_json(kubectl, "afm", name), "Reachable")
            return c if c and c["status"] == "False" else None

        cond = wait_for(f"{name} Reachable=False", reachable_false, timeout=60)
        assert cond["reason"] == reason
        assert "aifactory-system/" + name in cond["message"] or reason == "ClusterUnreachable"
        ready = condition(get_json(kubectl, "afm", name), "Ready")
        assert ready is not None and ready["status"] == "False"
        # the other modules are unaffected
        for m in get_json(kubectl, "afm")["items"]:
            if not m["metadata"]["name"].startswith("broken-"):
                assert condition(m, "Ready")["status"] == "True", m["metadata"]["name"]
        # nothing secret in status, events or operator logs
        assert SECRET_TOKEN not in kubectl("get", "afm", "-o", "yaml").stdout
        assert SECRET_TOKEN not in kubectl("get", "events", "-A", "-o", "yaml").stdout
        assert SECRET_TOKEN not in operator.logs()
    finally:
        kubectl("delete", "afm", name, "--ignore-not-found", check=False)
        kubectl(
            "delete", "secret", "-n", "aifactory-system", name, "--ignore-not-found", check=False
        )


def test_operator_killed_mid_way_converges_without_duplicates_or_orphans(
    samples_applied: list[dict[str, Any]], operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    base = next(d for d in samples_applied if d["metadata"]["name"] == "support-classifier")
    crash = copy.deepcopy(base)
    crash["metadata"] = {"name": "crash-test", "namespace": "ml-platform"}
    kubectl("apply", "-f", "-", input=json.dumps(crash))
    # kill as soon as the first member object exists: placement written half-way
    wait_for(
        "a first member Deployment",
        lambda: member_deployments(kubectl, fleet, "crash-test"),
        timeout=60,
        every=0.1,
    )
    operator.restart()
    wait_for(
        "crash-test Ready after restart",
        lambda: is_ready(infd(kubectl, "ml-platform", "crash-test")),
        timeout=120,
    )
    status = infd(kubectl, "ml-platform", "crash-test")["status"]
    members = member_deployments(kubectl, fleet, "crash-test")
    placed = {p["module"]: p["replicas"] for p in status["placements"]}
    seen: dict[str, int] = {}
    for cluster, d in members:
        module = d["metadata"]["labels"]["aifactory.dev/placed-on"]
        assert cluster == cluster_of(kubectl, module)
        assert module not in seen, f"duplicate member Deployment for {module}"
        seen[module] = d["spec"]["replicas"]
    assert seen == placed
    kubectl("delete", "infd", "-n", "ml-platform", "crash-test", "--timeout=60s", timeout=90)
    assert member_deployments(kubectl, fleet, "crash-test") == []


def test_module_that_stops_complying_loses_enforced_replicas(
    samples_applied: list[dict[str, Any]], kubectl: Any
) -> None:
    """paris drops ISO27001: the Enforce policy's deployment leaves it; the policy shows it."""
    before = {p["module"] for p in infd(kubectl, "eu-chat", "eu-assistant")["status"]["placements"]}
    assert "paris" in before, "the sample places eu-assistant partly on paris"
    certs = get_json(kubectl, "afm", "paris")["spec"]["security"]["certifications"]
    kubectl(
        "patch",
        "afm",
        "paris",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"security": {"certifications": ["SOC2"]}}}),
    )
    try:

        def moved() -> bool:
            obj = infd(kubectl, "eu-chat", "eu-assistant")
            mods = {p["module"] for p in obj["status"]["placements"]}
            return "paris" not in mods and is_ready(obj)

        wait_for("eu-assistant off paris and Ready", moved, timeout=90)
        events = get_json(
            kubectl,
            "events",
            "-n",
            "eu-chat",
            "--field-selector",
            "involvedObject.name=eu-assistant",
        )["items"]
        assert any(e["reason"] == "Rescheduled" and "ISO27001" in e["message"] for e in events)
    finally:
        kubectl(
            "patch",
            "afm",
            "paris",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"security": {"certifications": certs}}}),
        )


def test_audit_policy_flags_but_does_not_move(
    samples_applied: list[dict[str, Any]], kubectl: Any
) -> None:
    """The Audit policy (no FIVE_EYES operators for confidential data) records, never filters."""

    def bound() -> dict[str, Any] | None:
        policy = get_json(kubectl, "sovpol", "confidential-no-five-eyes")
        refs = policy.get("status", {}).get("boundDeployments", [])
        return policy if "ml-platform/support-classifier" in refs else None

    policy = wait_for("the Audit policy to list support-classifier", bound, timeout=30)
    status = infd(kubectl, "ml-platform", "support-classifier")["status"]
    on_five_eyes = [p["module"] for p in status["placements"] if p["module"] == "dallas"]
    compliant = condition(infd(kubectl, "ml-platform", "support-classifier"), "Compliant")
    if on_five_eyes:
        assert (
            compliant["status"] == "False" and "confidential-no-five-eyes" in compliant["message"]
        )
        assert any(v["module"] == "dallas" for v in policy["status"]["violations"])
    else:
        assert compliant["status"] == "True"


def test_drain_moves_every_replica_off_a_module_make_before_break(
    samples_applied: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> None:
    """`aifactoryctl drain paris --wait` returns once nothing is placed there any more."""

    def on_paris() -> int:
        return sum(
            p["replicas"]
            for d in get_json(kubectl, "infd", "-A")["items"]
            for p in d.get("status", {}).get("placements", [])
            if p["module"] == "paris"
        )

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "aifactory.cli.main",
            *args,
            "--kubeconfig",
            str(fleet.kubeconfig(HUB)),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=150)

    assert on_paris() > 0, "the samples place replicas on paris"
    try:
        proc = ctl("drain", "paris", "--wait", "120")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "drained" in proc.stdout
        assert on_paris() == 0
        kubectl(
            "wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=90s", timeout=120
        )
        wait_for(
            "member Deployments removed from paris",
            lambda: (
                not get_json(
                    kubectl,
                    "deployments",
                    "-A",
                    "-l",
                    "aifactory.dev/placed-on=paris",
                    cluster="paris",
                )["items"]
            ),
            timeout=60,
        )
    finally:
        ctl("uncordon", "paris")


def test_metrics_endpoint_reports_reconciles_placements_and_fleet_gpus(
    samples_applied: list[dict[str, Any]], operator: OperatorProcess
) -> None:
    port = operator.env["AIFACTORY_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for series in (
        'aifactory_reconcile_total{controller="inferencedeployment"}',
        'aifactory_reconcile_total{controller="module"}',
        'aifactory_reconcile_duration_seconds_bucket{controller="inferencedeployment"',
        'aifactory_placed_replicas{deployment="eu-chat/eu-assistant"',
        'aifactory_unplaced_replicas{deployment="eu-chat/eu-assistant"} 0.0',
        'aifactory_module_gpus{module="oslo",state="allocatable"}',
        'aifactory_deployment_carbon_intensity_grams_per_kwh{deployment="eu-chat/eu-assistant"}',
    ):
        assert series in text, series
    # nightly-summarizer was deleted by an earlier test: its series are gone
    assert 'deployment="batch/nightly-summarizer"' not in text
