"""Helpers of the chart tests: pinned helm, ServiceAccount kubeconfigs, release objects."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from hack.fleet import HUB, Fleet

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aifactory-operator"
NAMESPACE = "aifactory-system"
THIRD_PARTY_CRDS = Path(__file__).parent / "data" / "third_party_crds.yaml"

#: Namespaces ALL_FEATURES gives the operator Secret access in (they must exist to apply it).
SECRET_NAMESPACES = ("aifactory-system", "batch")
#: Every optional feature on (the monitoring API must be served for the ServiceMonitor).
ALL_FEATURES = [
    "--set",
    "replicaCount=2",
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "grafanaDashboard.enabled=true",
    "--set",
    "webhook.certificate.source=certManager",
    "--set",
    "rbac.secretNamespaces={" + ",".join(SECRET_NAMESPACES) + "}",
    "--set",
    "config.heartbeat_interval=5",
]
MONITORING_API = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]


def helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    cmd = [str(Fleet.binary("helm")), *args]
    if kubeconfig is not None:
        cmd += ["--kubeconfig", str(kubeconfig)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def render(*args: str, release: str = "aifactory") -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "--namespace", NAMESPACE, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def sa_kubeconfig(
    kubectl: Any,
    fleet: Fleet,
    account: str,
    path: Path,
    namespace: str = NAMESPACE,
    cluster: str = HUB,
) -> Path:
    """A kubeconfig authenticating as a ServiceAccount of `cluster` (a bound token, like a
    Pod's)."""
    token = kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h", cluster=cluster
    ).stdout.strip()
    admin = yaml.safe_load(fleet.kubeconfig(cluster).read_text())
    server = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": cluster, "cluster": server}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {"cluster": cluster, "user": account, "namespace": namespace},
                    }
                ],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return path


def release_objects(kubectl: Any, release: str) -> list[str]:
    """Every object labelled as part of the Helm release, namespaced and cluster-scoped."""
    kinds = (
        "deployments,replicasets,pods,services,configmaps,secrets,serviceaccounts,roles,"
        "rolebindings,poddisruptionbudgets,servicemonitors.monitoring.coreos.com,"
        "certificates.cert-manager.io,issuers.cert-manager.io"
    )
    cluster_kinds = "clusterroles,clusterrolebindings,validatingwebhookconfigurations"
    selector = f"app.kubernetes.io/instance={release}"
    names = kubectl("get", kinds, "-A", "-l", selector, "-o", "name").stdout.split()
    names += kubectl("get", cluster_kinds, "-l", selector, "-o", "name").stdout.split()
    return sorted(names)


def chart_env(*args: str, release: str = "aifactory") -> dict[str, str]:
    """The operator container's environment as the chart renders it (plain values only)."""
    deployment = by_kind(render(*args, release=release), "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}


def admission_review(port: str, obj: dict[str, Any], cafile: Path) -> dict[str, Any]:
    """Ask one operator replica's webhook about creating `obj`, as the apiserver would
    (AdmissionReview v1 to the handler path of its kind); returns the review's response."""
    plural = {"InferenceDeployment": "inferencedeployments"}[obj["kind"]]
    meta = obj["metadata"]
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "aifactory.dev", "version": "v1alpha1", "kind": obj["kind"]},
            "resource": {"group": "aifactory.dev", "version": "v1alpha1", "resource": plural},
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "operation": "CREATE",
            "userInfo": {"username": "test"},
            "object": obj,
            "oldObject": None,
            "dryRun": True,
        },
    }
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/{plural}",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(request, context=context, timeout=10) as resp:
        answer: dict[str, Any] = json.load(resp)["response"]
    return answer
