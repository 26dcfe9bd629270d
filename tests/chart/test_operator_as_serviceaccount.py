"""The operator run with the chart's ServiceAccount token (not admin) does its whole job.

This is the proof that the chart's RBAC is enough, and no more than enough: the end-to-end
placement flow passes under that identity, and Secrets outside the namespaces it needs are out
of reach. Member clusters are reached the same way, with a ServiceAccount holding only
docs/member-rbac.yaml, so the documented member rules are proven too. The same live objects then
feed the Argo CD health checks of docs/gitops/.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml
from hack.fleet import HUB, Fleet
from tests.chart.conftest import apply_samples
from tests.chart.helpers import (
    CHART,
    NAMESPACE,
    REPO,
    helm,
    sa_kubeconfig,
)
from tests.e2e.helpers import (
    OperatorProcess,
    cluster_of,
    condition,
    delete_all_deployments,
    get_json,
    operator_env,
    pinned_to_dallas,
    running_pods,
    wait_for,
)

from aifactory.labels import GPU_RESOURCE, MODULE_LABEL

pytestmark = pytest.mark.fleet

RELEASE = "rbac"
ACCOUNT = f"{RELEASE}-aifactory-operator"
OWNER = "aifactory.dev/inference-deployment"
ARGOCD_CM = REPO / "docs" / "gitops" / "argocd-cm.yaml"
MEMBER_RBAC = REPO / "docs" / "member-rbac.yaml"
MEMBER_ACCOUNT = "aifactory-operator"


def _register_members_as_service_accounts(
    kubectl: Any, fleet: Fleet, directory: Path
) -> dict[str, Path]:
    """docs/member-rbac.yaml in every member, and the hub's member Secrets holding kubeconfigs
    with those ServiceAccounts' tokens (instead of the fleet's admin ones)."""
    out = {}
    for member in fleet.members:
        kubectl("apply", "-f", str(MEMBER_RBAC), cluster=member)
        kubeconfig = sa_kubeconfig(
            kubectl, fleet, MEMBER_ACCOUNT, directory / f"{member}.kubeconfig", cluster=member
        )
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": member, "namespace": NAMESPACE},
            "type": "Opaque",
            "data": {"kubeconfig": base64.b64encode(kubeconfig.read_bytes()).decode()},
        }
        kubectl("apply", "-f", "-", input=json.dumps(secret))
        out[member] = kubeconfig
    return out


def _heartbeat_after(kubectl: Any, since: str) -> bool:
    items = get_json(kubectl, "afm")["items"]
    return bool(items) and all(
        (condition(m, "Ready") or {}).get("status") == "True"
        and m["status"].get("lastHeartbeatTime", "") >= since
        for m in items
        if not m["metadata"]["name"].startswith("broken-")
    )


@pytest.fixture(scope="module")
def sa(
    hub_ready: None, fleet: Fleet, kubectl: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, Path]]:
    """Chart installed (webhook managed by the operator, which runs outside the hub), members
    registered with ServiceAccounts of docs/member-rbac.yaml, and the operator started with a
    token of the chart's ServiceAccount."""
    apply_samples(fleet)
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        "webhook.mode=operator",
        "--set",
        "webhook.host=127.0.0.1",
        kubeconfig=fleet.kubeconfig(HUB),
    )
    directory = tmp_path_factory.mktemp("sa")
    kubeconfig = sa_kubeconfig(kubectl, fleet, ACCOUNT, directory / "sa.kubeconfig")
    _register_members_as_service_accounts(kubectl, fleet, directory)
    op = OperatorProcess(operator_env(kubeconfig), fleet.log_dir / "operator-serviceaccount.log")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    op.start()
    try:
        wait_for(
            "every module heartbeated by the SA operator",
            lambda: _heartbeat_after(kubectl, started),
            timeout=90,
        )
        yield op, kubeconfig
    finally:
        delete_all_deployments(kubectl)
        op.stop()
        helm(
            "uninstall",
            RELEASE,
            "-n",
            NAMESPACE,
            "--wait",
            kubeconfig=fleet.kubeconfig(HUB),
            check=False,
        )
        # the operator's own webhook configuration (webhook.mode=operator) is not Helm's
        kubectl(
            "delete",
            "validatingwebhookconfiguration",
            "validating.aifactory.dev",
            "--ignore-not-found",
            check=False,
        )
        fleet.register_members()  # the admin kubeconfigs again, for the tests that follow


@pytest.fixture(scope="module")
def samples_placed(sa: tuple[OperatorProcess, Path], kubectl: Any) -> list[dict[str, Any]]:
    kubectl("apply", "--server-side", "-f", str(REPO / "samples" / "deployments.yaml"))
    kubectl("wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=180s", timeout=200)
    return [d for d in yaml.safe_load_all((REPO / "samples/deployments.yaml").read_text()) if d]


def test_samples_are_placed_and_run_under_the_service_account(
    samples_placed: list[dict[str, Any]], sa: tuple[OperatorProcess, Path], kubectl: Any
) -> None:
    op, _ = sa
    for d in samples_placed:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        status = get_json(kubectl, "infd", "-n", ns, name)["status"]
        assert status["readyReplicas"] == status["replicas"] > 0
        clusters = set()
        for p in status["placements"]:
            cluster = cluster_of(kubectl, p["module"])
            clusters.add(cluster)
            running = running_pods(kubectl, ns, name, p["module"])
            assert len(running) == p["replicas"], (name, p)
            node = get_json(kubectl, "node", running[0]["spec"]["nodeName"], cluster=cluster)
            assert node["metadata"]["labels"][MODULE_LABEL] == p["module"]
            limits = running[0]["spec"]["containers"][0]["resources"]["limits"]
            assert limits[GPU_RESOURCE] == str(d["spec"]["resources"]["gpusPerReplica"])
        # the routing table ConfigMap in the hub (create + patch through apply)
        kubectl("get", "configmap", "-n", ns, f"{name}-routing")
    # node-pool modules (hub) and member clusters both used: both RBAC paths exercised
    used = {
        cluster_of(kubectl, p["module"])
        for d in samples_placed
        for p in get_json(kubectl, "infd", "-n", d["metadata"]["namespace"], d["metadata"]["name"])[
            "status"
        ]["placements"]
    }
    assert HUB in used and used - {HUB}, used
    # decision records appended and compliance reports applied under the same identity
    recorded = wait_for(
        "a Placed record per sample",
        lambda: (
            {
                r["spec"]["deployment"]["name"]
                for r in get_json(kubectl, "placementrecords")["items"]
                if r["spec"]["reason"] == "Placed"
            }
            >= {d["metadata"]["name"] for d in samples_placed}
        ),
        timeout=30,
    )
    assert recorded
    wait_for(
        "the EU sample's compliance Report",
        lambda: (
            kubectl(
                "get",
                "reports.openreports.io",
                "-n",
                "eu-chat",
                "aifactory-sovereignty-eu-assistant",
                check=False,
            ).returncode
            == 0
        ),
        timeout=30,
    )
    assert "forbidden" not in op.logs().lower(), "the chart's RBAC refused a call"


@pytest.fixture(scope="module")
def cascade_placed(
    samples_placed: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> Iterator[dict[str, Any]]:
    """samples/cascade.yaml routed by the SA operator; removed again (routes included)."""
    kubectl("apply", "--server-side", "-f", str(REPO / "samples" / "cascade.yaml"))

    def routed() -> dict[str, Any] | None:
        obj = get_json(kubectl, "infr", "-n", "chat", "assistant")
        c = condition(obj, "Ready")
        return obj if c and c["status"] == "True" else None

    yield wait_for("the sample router Ready", routed, timeout=180)
    kubectl("delete", "infr", "-n", "chat", "assistant", "--timeout=60s", check=False)
    for member in fleet.members:
        wait_for(
            f"the router's HTTPRoutes gone from {member}",
            lambda m=member: not get_json(kubectl, "httproutes", "-A", cluster=m)["items"],
            timeout=90,
        )


def test_cascade_routes_under_the_service_account(
    cascade_placed: dict[str, Any], sa: tuple[OperatorProcess, Path], kubectl: Any, fleet: Fleet
) -> None:
    op, _ = sa
    # the router's status and routing ConfigMap on the hub, HTTPRoutes in the members that
    # serve a tier (docs/member-rbac.yaml), none in the hub (no Gateway API there)
    kubectl("get", "configmap", "-n", "chat", "assistant-routing")
    routes = {
        m: get_json(kubectl, "httproutes", "-n", "chat", cluster=m)["items"] for m in fleet.members
    }
    assert any(routes.values()), routes
    assert health("InferenceRouter", cascade_placed)[0] == "Healthy"
    assert "forbidden" not in op.logs().lower(), "the chart's RBAC refused a call"


def test_admission_rejects_under_the_service_account(
    samples_placed: list[dict[str, Any]], kubectl: Any
) -> None:
    eu = next(d for d in samples_placed if d["metadata"]["name"] == "eu-assistant")
    out = kubectl("apply", "-f", "-", input=json.dumps(pinned_to_dallas(eu)), check=False)
    assert out.returncode != 0
    assert "admission webhook" in out.stderr and "eu-restricted-data" in out.stderr


def test_deleting_removes_member_objects_under_the_service_account(
    samples_placed: list[dict[str, Any]], kubectl: Any, fleet: Fleet
) -> None:
    kubectl("delete", "infd", "-n", "batch", "nightly-summarizer", "--timeout=60s", timeout=90)
    for cluster in fleet.clusters:
        left = get_json(
            kubectl,
            "deployments,services",
            "-A",
            "-l",
            f"{OWNER}=nightly-summarizer",
            cluster=cluster,
        )
        assert left["items"] == [], cluster


def test_service_account_cannot_read_secrets_it_does_not_need(
    sa: tuple[OperatorProcess, Path], kubectl: Any, fleet: Fleet
) -> None:
    _, kubeconfig = sa

    def as_sa(*args: str) -> Any:
        return kubectl("--kubeconfig", str(kubeconfig), *args, check=False)

    # the fixture passes the admin kubeconfig first; the later --kubeconfig wins
    assert as_sa("auth", "can-i", "get", "secrets", "-n", NAMESPACE).stdout.strip() == "yes"
    for ns in ("default", "kube-system", "eu-chat"):
        assert as_sa("auth", "can-i", "get", "secrets", "-n", ns).stdout.strip() == "no", ns
    assert as_sa("auth", "can-i", "list", "secrets", "-A").stdout.strip() == "no"
    assert as_sa("auth", "can-i", "list", "secrets", "-n", NAMESPACE).stdout.strip() == "no"
    # a real read: the member kubeconfig it needs works, a Secret elsewhere is 403
    kubectl(
        "create",
        "secret",
        "generic",
        "not-for-the-operator",
        "-n",
        "default",
        "--from-literal=token=s3cret",
        check=False,
    )
    assert as_sa("get", "secret", "-n", NAMESPACE, fleet.members[0], "-o", "name").returncode == 0
    denied = as_sa("get", "secret", "-n", "default", "not-for-the-operator")
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    assert 'cannot get resource "secrets"' in denied.stderr
    # nor write anything outside its rules
    assert as_sa("auth", "can-i", "create", "pods", "-n", "batch").stdout.strip() == "no"
    assert as_sa("auth", "can-i", "update", "clusterroles").stdout.strip() == "no"
    # in a member, the documented member rules: its workloads, nothing else
    member = fleet.members[0]
    member_kubeconfig = kubeconfig.parent / f"{member}.kubeconfig"

    def in_member(*args: str) -> str:
        out = kubectl("--kubeconfig", str(member_kubeconfig), *args, cluster=member, check=False)
        return str(out.stdout.strip())

    assert in_member("auth", "can-i", "patch", "deployments", "-n", "batch") == "yes"
    assert in_member("auth", "can-i", "get", "secrets", "-n", "batch") == "no"
    assert in_member("auth", "can-i", "create", "pods", "-n", "batch") == "no"


# ------------------------------------------------------------------ Argo CD health checks
def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run the Argo CD health script for `kind` the way Argo CD does: `obj` is a global."""
    scripts = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(scripts[f"resource.customizations.health.aifactory.dev_{kind}"])
    return str(result["status"]), str(result["message"])


def test_argocd_health_of_real_objects(samples_placed: list[dict[str, Any]], kubectl: Any) -> None:
    for d in get_json(kubectl, "infd", "-A")["items"]:
        assert health("InferenceDeployment", d)[0] == "Healthy", d["metadata"]["name"]
    for m in get_json(kubectl, "afm")["items"]:
        assert health("AIFactoryModule", m) == ("Healthy", condition(m, "Ready")["message"])
    policies = {p["metadata"]["name"]: p for p in get_json(kubectl, "sovpol")["items"]}
    assert health("SovereigntyPolicy", policies["eu-restricted-data"])[0] == "Healthy"
    audit = health("SovereigntyPolicy", policies["confidential-no-five-eyes"])
    assert audit[0] == "Healthy"  # Audit findings are reported, not a failure

    # a new generation the operator has not observed yet: Progressing
    ready = get_json(kubectl, "infd", "-n", "eu-chat", "eu-assistant")
    stale = copy.deepcopy(ready)
    stale["metadata"]["generation"] += 1
    assert health("InferenceDeployment", stale)[0] == "Progressing"
    # a brand-new object, as the apiserver returns it before the operator has seen it
    fresh = copy.deepcopy(ready)
    fresh["metadata"] = {"name": "fresh", "namespace": "eu-chat"}
    fresh.pop("status")
    created = json.loads(
        kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(fresh)
        ).stdout
    )
    assert health("InferenceDeployment", created)[0] == "Progressing"

    # impossible to place (a GPU model no module has): Degraded with the engine's reason
    impossible = copy.deepcopy(fresh)
    impossible["metadata"]["name"] = "needs-b200"
    impossible["spec"]["resources"]["gpuModels"] = ["B200"]
    kubectl("apply", "-f", "-", input=json.dumps(impossible))

    def placed_false() -> dict[str, Any] | None:
        obj = get_json(kubectl, "infd", "-n", "eu-chat", "needs-b200")
        c = condition(obj, "Placed")
        return obj if c and c["status"] == "False" else None

    obj = wait_for("needs-b200 Placed=False", placed_false, timeout=60)
    status, message = health("InferenceDeployment", obj)
    assert status == "Degraded"
    assert message == condition(obj, "Placed")["message"] and "B200" in message

    # a module whose cluster cannot be reached: Degraded
    broken = get_json(kubectl, "afm", "paris")
    broken["metadata"] = {"name": "broken-health"}
    broken.pop("status", None)
    broken["spec"]["cluster"] = {
        "kubeconfigSecretRef": {
            "namespace": NAMESPACE,
            "name": "no-such-secret",
            "key": "kubeconfig",
        }
    }
    kubectl("apply", "-f", "-", input=json.dumps(broken))
    try:

        def not_ready() -> dict[str, Any] | None:
            m = get_json(kubectl, "afm", "broken-health")
            c = condition(m, "Ready")
            return m if c and c["status"] == "False" else None

        module = wait_for("broken-health Ready=False", not_ready, timeout=60)
        status, message = health("AIFactoryModule", module)
        assert status == "Degraded" and "no-such-secret" in message
    finally:
        kubectl("delete", "afm", "broken-health", "--ignore-not-found", check=False)
        kubectl(
            "delete",
            "infd",
            "-n",
            "eu-chat",
            "needs-b200",
            "--ignore-not-found",
            "--timeout=60s",
            check=False,
        )
