"""Helpers of the end-to-end tests: the operator process, waits on conditions, kubectl JSON."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hack.fleet import HUB

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120, every: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class OperatorProcess:
    """One local `python -m aifactory` process; `restart` keeps its ports (webhook, liveness)."""

    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aifactory"],
            cwd=REPO,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.starts += 1

    def serving(self) -> bool:
        """Liveness answers (startup handlers done) and the webhook port accepts connections."""
        try:
            port = self.env["AIFACTORY_LIVENESS_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                if resp.status != 200:
                    return False
            with socket.create_connection(
                ("127.0.0.1", int(self.env["AIFACTORY_WEBHOOK_PORT"])), timeout=2
            ):
                return True
        except OSError:
            return False

    def wait_serving(self, timeout: float = 60) -> None:
        wait_for("the operator to serve liveness and its webhook", self.serving, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.kill()
        self.start()
        self.wait_serving()

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


def get_json(kubectl: Any, *args: str, cluster: str = HUB) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json", cluster=cluster).stdout)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next(
        (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None
    )


def all_modules_ready(kubectl: Any) -> bool:
    items = get_json(kubectl, "afm")["items"]
    return bool(items) and all((condition(m, "Ready") or {}).get("status") == "True" for m in items)


#: Demand regions the tests use: (country, latitude, longitude).
PLACES: dict[str, tuple[str, float, float]] = {
    "eu-west": ("IE", 53.35, -6.26),
    "ap-southeast": ("SG", 1.35, 103.82),
    "de-central": ("DE", 50.11, 8.68),
}


def region(name: str, rps: float) -> dict[str, Any]:
    country, lat, lon = PLACES[name]
    return {
        "name": name,
        "country": country,
        "latitude": lat,
        "longitude": lon,
        "requestsPerSecond": rps,
    }


def elastic_spec(
    *regions: dict[str, Any], min_replicas: int, max_latency_ms: float, **demand: Any
) -> dict[str, Any]:
    """An InferenceDeployment spec sized by demand: 100 rps per replica, no headroom."""
    return {
        "resources": {"gpusPerReplica": 1, "gpuModels": ["L4", "L40S", "A100"]},
        "replicas": {"min": min_replicas, "max": 10},
        "throughputPerReplica": 100,
        "demand": {"headroom": 0.0, "regions": list(regions), **demand},
        "slo": {"maxLatencyMs": max_latency_ms, "minModules": 1},
    }


SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def sample_deployment(name: str) -> dict[str, Any]:
    """One InferenceDeployment of samples/deployments.yaml, as a fresh dict."""
    docs = yaml.safe_load_all((SAMPLES / "deployments.yaml").read_text())
    return copy.deepcopy(next(d for d in docs if d and d["metadata"]["name"] == name))


def small_deployment(name: str, namespace: str = "batch", replicas: int = 2) -> dict[str, Any]:
    """The sample summariser under another name with fixed replicas: quick to place."""
    d = sample_deployment("nightly-summarizer")
    d["metadata"] = {"name": name, "namespace": namespace}
    d["spec"]["replicas"] = {"fixed": replicas}
    return d


def pinned_to_dallas(eu_deployment: dict[str, Any]) -> dict[str, Any]:
    """The EU-restricted sample pinned to a US module: admission must refuse it."""
    pinned = copy.deepcopy(eu_deployment)
    pinned["metadata"]["name"] = f"{eu_deployment['metadata']['name']}-pinned"
    pinned["spec"]["placement"] = {"modules": ["dallas"]}
    return pinned


def delete_all_deployments(kubectl: Any) -> None:
    """Delete every InferenceDeployment and wait for the operator's finalizer to clean up."""
    kubectl(
        "delete", "infd", "--all", "-A", "--wait=true", "--timeout=90s", check=False, timeout=120
    )


def cluster_of(kubectl: Any, module: str) -> str:
    """The fleet cluster a module's workloads run in: its kubeconfig Secret's name, or the hub."""
    spec = get_json(kubectl, "afm", module)["spec"]["cluster"]
    return str(spec["kubeconfigSecretRef"]["name"]) if "kubeconfigSecretRef" in spec else HUB


def running_pods(kubectl: Any, namespace: str, name: str, module: str) -> list[dict[str, Any]]:
    """Running Pods of one InferenceDeployment on one module, from the module's own cluster."""
    pods = get_json(
        kubectl,
        "pods",
        "-n",
        namespace,
        "-l",
        f"aifactory.dev/inference-deployment={name},aifactory.dev/placed-on={module}",
        cluster=cluster_of(kubectl, module),
    )["items"]
    return [x for x in pods if x["status"]["phase"] == "Running"]
