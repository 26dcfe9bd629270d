"""The chart against the real hub: server-side dry run, install, upgrade, uninstall."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.chart.helpers import (
    ALL_FEATURES,
    CHART,
    MONITORING_API,
    NAMESPACE,
    SECRET_NAMESPACES,
    helm,
    release_objects,
)
from tests.e2e.helpers import get_json, wait_for

pytestmark = pytest.mark.fleet

RELEASE = "lifecycle"
CRDS = (
    "aifactorymodules.aifactory.dev",
    "inferencedeployments.aifactory.dev",
    "sovereigntypolicies.aifactory.dev",
)


@pytest.fixture(scope="module")
def restricted_namespace(hub_ready: None, kubectl: Any) -> str:
    """The release namespace enforces the restricted Pod Security Standard."""
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl(
        "label",
        "--overwrite",
        "namespace",
        NAMESPACE,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    return NAMESPACE


@pytest.mark.parametrize("extra", [[], ALL_FEATURES], ids=["defaults", "all-features"])
def test_rendered_manifests_apply_with_server_dry_run(
    restricted_namespace: str, kubectl: Any, extra: list[str]
) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    # the Roles for rbac.secretNamespaces go into namespaces that must exist (another test
    # may not have made them: this one runs alone too)
    for ns in SECRET_NAMESPACES:
        kubectl("create", "namespace", ns, check=False)
    out = helm(
        "template", "dryrun", str(CHART), "-n", restricted_namespace, *extra, *MONITORING_API
    ).stdout
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=out)
    assert "deployment.apps/dryrun-aifactory-operator created (server dry run)" in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr  # no restricted-PSS warning
    if extra:
        assert "servicemonitor.monitoring.coreos.com/dryrun-aifactory-operator" in result.stdout
        assert "certificate.cert-manager.io/dryrun-aifactory-operator-webhook" in result.stdout


def _pods(kubectl: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        kubectl, "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"]
    return items


def _running_hashes(kubectl: Any) -> set[str]:
    return {
        p["metadata"]["labels"]["pod-template-hash"]
        for p in _pods(kubectl)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def test_install_upgrade_uninstall(restricted_namespace: str, kubectl: Any, fleet: Fleet) -> None:
    kubeconfig = fleet.kubeconfig(HUB)
    install = helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout",
        "180s",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        kubeconfig=kubeconfig,
    )
    assert "STATUS: deployed" in install.stdout
    assert "aifactoryctl explain" in install.stdout  # NOTES.txt
    for crd in CRDS:
        kubectl("get", "crd", crd)
    # the hub serves monitoring.coreos.com/v1, so .Capabilities rendered the ServiceMonitor
    kubectl(
        "get",
        "servicemonitors.monitoring.coreos.com",
        "-n",
        NAMESPACE,
        f"{RELEASE}-aifactory-operator",
    )
    deployment = get_json(kubectl, "deployment", "-n", NAMESPACE, f"{RELEASE}-aifactory-operator")
    assert deployment["status"]["availableReplicas"] == 1
    before = _running_hashes(kubectl)
    assert len(before) == 1
    secret = f"{RELEASE}-aifactory-operator-webhook-tls"
    ca_before = get_json(kubectl, "secret", "-n", NAMESPACE, secret)["data"]["ca.crt"]

    upgrade = helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout",
        "180s",
        "--reuse-values",
        "--set",
        "config.heartbeat_interval=7",
        kubeconfig=kubeconfig,
    )
    assert "REVISION: 2" in upgrade.stdout
    after = wait_for(
        "the rollout to replace the Pods",
        lambda: (h := _running_hashes(kubectl)) and h.isdisjoint(before) and h,
        timeout=120,
    )
    assert len(after) == 1
    config = get_json(kubectl, "configmap", "-n", NAMESPACE, f"{RELEASE}-aifactory-operator-config")
    assert "heartbeat_interval: 7" in config["data"]["settings.yaml"]
    # the generated webhook certificate survives upgrades (lookup), so the CA bundle is stable
    assert get_json(kubectl, "secret", "-n", NAMESPACE, secret)["data"]["ca.crt"] == ca_before
    vwc = get_json(kubectl, "validatingwebhookconfiguration", f"{RELEASE}-aifactory-operator")
    assert vwc["webhooks"][0]["clientConfig"]["caBundle"] == ca_before

    helm(
        "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s", kubeconfig=kubeconfig
    )
    wait_for(
        "every object of the release gone",
        lambda: not release_objects(kubectl, RELEASE),
        timeout=120,
    )
    # documented: Helm keeps the CRDs (and so every custom resource) on uninstall
    kept = json.loads(kubectl("get", "crd", *CRDS, "-o", "json").stdout)["items"]
    assert len(kept) == len(CRDS)
