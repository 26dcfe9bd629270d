"""Helpers of the chart tests: pinned helm, ServiceAccount kubeconfigs, release objects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hack.fleet import HUB, Fleet
from tests.e2e.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aifactory-operator"
NAMESPACE = "aifactory-system"
THIRD_PARTY_CRDS = Path(__file__).parent / "data" / "third_party_crds.yaml"

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
    "rbac.secretNamespaces={aifactory-system,batch}",
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
    kubectl: Any, fleet: Fleet, account: str, path: Path, namespace: str = NAMESPACE
) -> Path:
    """A kubeconfig authenticating as a ServiceAccount (a bound token, like a Pod's)."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    hub = yaml.safe_load(fleet.kubeconfig(HUB).read_text())
    cluster = hub["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": HUB, "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {"cluster": HUB, "user": account, "namespace": namespace},
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
    cluster_kinds = (
        "clusterroles,clusterrolebindings,validatingwebhookconfigurations,"
        "clusterkopfpeerings.kopf.dev"
    )
    selector = f"app.kubernetes.io/instance={release}"
    names = kubectl("get", kinds, "-A", "-l", selector, "-o", "name").stdout.split()
    names += kubectl("get", cluster_kinds, "-l", selector, "-o", "name").stdout.split()
    return sorted(names)


@dataclass
class Operator:
    """One local `python -m aifactory` process (the chart's ServiceAccount as its identity)."""

    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aifactory"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def operator_env(kubeconfig: Path, **settings: str) -> dict[str, str]:
    """Environment of a test operator: short intervals, free ports, the given kubeconfig."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIFACTORY_")},
        "KUBECONFIG": str(kubeconfig),
        "AIFACTORY_HEARTBEAT_INTERVAL": "2",
        "AIFACTORY_HEARTBEAT_TIMEOUT": "6",
        "AIFACTORY_STATUS_INTERVAL": "2",
        "AIFACTORY_TOLERATION_SECONDS": "10",
        "AIFACTORY_METRICS_PORT": str(free_port()),
        "AIFACTORY_LIVENESS_PORT": str(free_port()),
        "AIFACTORY_WEBHOOK_PORT": str(free_port()),
        **settings,
    }
