"""Helpers of the end-to-end tests: the operator process, waits on conditions, kubectl JSON."""

from __future__ import annotations

import copy
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
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


def die_with_parent() -> None:
    """Make a child exit when the test process dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


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
            # a killed test run must not leave an operator behind fighting the next one
            preexec_fn=die_with_parent,
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

    def warm(self) -> bool:
        """/readyz says the hub caches are warm, as the chart's readiness probe waits for
        before the webhook Service routes here (True when the metrics port is off)."""
        metrics = self.env.get("AIFACTORY_METRICS_PORT", "0")
        if metrics == "0":
            return True
        try:
            url = f"http://127.0.0.1:{metrics}/readyz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def wait_serving(self, timeout: float = 60) -> None:
        wait_for(
            "the operator to serve liveness and its webhook, with warm caches",
            lambda: self.serving() and self.warm(),
            timeout=timeout,
        )

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


class ServingSampler:
    """Ready replicas of one InferenceDeployment across every cluster of the fleet, sampled
    about once a second in a thread (the users' view: what serves, wherever it runs).

    Uses one API client per cluster (kubectl per sample would take longer than a second).
    `unreachable` clusters are skipped (their replicas count as not serving)."""

    def __init__(self, fleet: Any, namespace: str, name: str, every: float = 1.0) -> None:
        from kubernetes import config

        self.namespace, self.name, self.every = namespace, name, every
        self.clients = {
            c: config.new_client_from_config(config_file=str(fleet.kubeconfig(c)))
            for c in fleet.clusters
        }
        self.samples: list[tuple[float, int]] = []
        self.skipped: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ready_now(self) -> int:
        from kubernetes import client

        total = 0
        for cluster, api in self.clients.items():
            try:
                items = (
                    client.AppsV1Api(api)
                    .list_namespaced_deployment(
                        self.namespace,
                        label_selector=f"aifactory.dev/inference-deployment={self.name}",
                        _request_timeout=(1.0, 2.0),
                    )
                    .items
                )
            except Exception:
                self.skipped.add(cluster)
                continue
            total += sum(int(d.status.ready_replicas or 0) for d in items)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.ready_now()))
            self._stop.wait(self.every)

    def __enter__(self) -> ServingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def minimum(self) -> int:
        return min(n for _, n in self.samples)


def ctl(fleet: Any, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `aifactoryctl` against the fleet's hub, as a user would."""
    cmd = [
        sys.executable,
        "-m",
        "aifactory.cli.main",
        *args,
        "--kubeconfig",
        str(fleet.kubeconfig(HUB)),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def apply_json(kubectl: Any, *objects: dict[str, Any], cluster: str = HUB) -> None:
    """Server-side apply objects in one kubectl call (one batch, as `kubectl apply -f` does)."""
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=json.dumps(doc),
        cluster=cluster,
    )


def infd_manifest(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An InferenceDeployment with a small model server and the given spec fields."""
    body: dict[str, Any] = {
        "model": {"name": name, "image": "registry.example/serve:1.0", "port": 8080},
        "resources": {"gpusPerReplica": 1},
        **spec,
    }
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def placed(kubectl: Any, namespace: str, name: str) -> dict[str, int]:
    obj = get_json(kubectl, "infd", "-n", namespace, name)
    return {p["module"]: p["replicas"] for p in obj.get("status", {}).get("placements", [])}


def is_ready(obj: dict[str, Any]) -> bool:
    c = condition(obj, "Ready")
    gen = obj["metadata"].get("generation")
    return bool(
        c and c["status"] == "True" and obj.get("status", {}).get("observedGeneration") == gen
    )


def events_of(kubectl: Any, namespace: str, name: str, *reasons: str) -> list[dict[str, Any]]:
    """Events of the object with this name (by uid), optionally only these reasons."""
    uid = get_json(kubectl, "infd", "-n", namespace, name)["metadata"]["uid"]
    items = get_json(
        kubectl, "events", "-n", namespace, "--field-selector", f"involvedObject.uid={uid}"
    )["items"]
    return [e for e in items if not reasons or e["reason"] in reasons]


class ConditionRecorder:
    """Every condition an InferenceDeployment's status shows, from a watch (so a state that
    lasts a second is not missed between two polls)."""

    def __init__(self, fleet: Any, namespace: str, name: str) -> None:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(fleet.kubeconfig(HUB)))
        self.namespace, self.name = namespace, name
        self.seen: list[tuple[str, str, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import client, watch

        api = client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    api.list_namespaced_custom_object,
                    "aifactory.dev",
                    "v1alpha1",
                    self.namespace,
                    "inferencedeployments",
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=5,
                ):
                    for c in (event["object"].get("status") or {}).get("conditions", []):
                        item = (c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
                        if item not in self.seen:
                            self.seen.append(item)
                    if self._stop.is_set():
                        w.stop()
            except Exception:
                self._stop.wait(0.5)

    def has(self, type_: str, reason: str) -> tuple[str, str, str, str] | None:
        return next((c for c in self.seen if c[0] == type_ and c[2] == reason), None)

    def __enter__(self) -> ConditionRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
