"""A local fleet of real Kubernetes control planes: one hub and N members, as plain processes.

There is no container engine on our machines, so instead of kind every cluster is a
kube-apiserver, kube-controller-manager, kube-scheduler and kwok controller running on loopback,
all backed by one etcd with a key prefix per cluster. kwok plays the kubelets: it keeps fake
GPU nodes Ready and moves scheduled Pods to Running, so Deployments really roll out.

State (ports, pids) is kept in `.fleet/state.json` so `down`, `status`, `stop` and `start` work
from another process than the one that ran `up`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aifactory.labels import GPU_MEMORY_LABEL, GPU_MODEL_LABEL, GPU_RESOURCE, MODULE_LABEL

from . import pki as pki_mod
from . import tools

HUB = "hub"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
_GPU_MEMORY_GIB = {"H100": 80, "A100": 80, "L40S": 48, "L4": 24}


class FleetError(RuntimeError):
    """The fleet cannot be brought up or operated; the message says what to do."""


@dataclass(frozen=True)
class NodePool:
    """A group of identical fake GPU nodes belonging to one module."""

    module: str
    gpu_model: str = "H100"
    nodes: int = 2
    gpus_per_node: int = 8

    @property
    def gpu_memory_gib(self) -> int:
        return _GPU_MEMORY_GIB.get(self.gpu_model, 80)


@dataclass(frozen=True)
class FleetConfig:
    """What to start. `pools` maps a cluster name to its node pools; the hub is always there."""

    root: Path = Path(".fleet")
    members: tuple[str, ...] = ("member-1", "member-2")
    pools: dict[str, tuple[NodePool, ...]] = field(default_factory=dict)
    ready_timeout: float = 90.0
    #: Install the pinned Gateway API standard CRDs in every member (not in the hub, so the
    #: operator's discovery of them is exercised both ways).
    gateway_api: bool = True

    def pools_of(self, cluster: str) -> tuple[NodePool, ...]:
        """Node pools of a cluster; by default the hub has one L40S pool, members one H100 pool."""
        if cluster in self.pools:
            return self.pools[cluster]
        if cluster == HUB:
            return (NodePool(module="hub-pool", gpu_model="L40S", nodes=2, gpus_per_node=4),)
        return (NodePool(module=cluster, gpu_model="H100", nodes=2, gpus_per_node=8),)

    @property
    def clusters(self) -> tuple[str, ...]:
        return (HUB, *self.members)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    """Make a child exit when its starter dies, so a crashed test run leaves no strays."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pids: Iterable[int], timeout: float = 15.0) -> None:
    pids = [p for p in pids if p and _alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if pids:
            time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _wait(what: str, probe: Callable[[], bool], timeout: float, log_hint: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    hint = f"; see {log_hint}" if log_hint else ""
    raise FleetError(f"timed out after {timeout:.0f}s waiting for {what}{hint}")


class Fleet:
    """Start, inspect and stop the local fleet described by a FleetConfig."""

    def __init__(self, config: FleetConfig | None = None, *, attached: bool = False) -> None:
        self.config = config or FleetConfig()
        self.root = self.config.root.resolve()
        #: attached fleets die with the Python process that started them (test sessions)
        self.attached = attached

    # ------------------------------------------------------------------ paths and state
    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def kubeconfig(self, cluster: str) -> Path:
        return self.root / f"{cluster}.kubeconfig"

    @staticmethod
    def binary(name: str) -> Path:
        return tools.binary(name)

    def _load_state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.rename(self.state_file)

    @property
    def clusters(self) -> list[str]:
        state = self._load_state()
        return list(state.get("clusters", {})) or list(self.config.clusters)

    @property
    def members(self) -> list[str]:
        return [c for c in self.clusters if c != HUB]

    def server(self, cluster: str) -> str:
        port = self._load_state()["clusters"][cluster]["ports"]["kube-apiserver"]
        return f"https://127.0.0.1:{port}"

    # ------------------------------------------------------------------ processes
    def _spawn(self, state: dict[str, Any], cluster: str | None, name: str, args: list[str]) -> int:
        log_name = f"{cluster}-{name}.log" if cluster else f"{name}.log"
        log = (self.log_dir / log_name).open("ab")
        proc = subprocess.Popen(
            [str(tools.binary(name)), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.attached else None,
        )
        log.close()
        if cluster is None:
            state["etcd"]["pid"] = proc.pid
        else:
            state["clusters"][cluster]["pids"][name] = proc.pid
        self._save_state(state)
        return proc.pid

    def _apiserver_args(self, state: dict[str, Any], cluster: str) -> list[str]:
        c = state["clusters"][cluster]
        p = pki_mod.load(self.root / "pki")
        return [
            f"--etcd-servers=http://127.0.0.1:{state['etcd']['port']}",
            f"--etcd-prefix=/registry/{cluster}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={c['ports']['kube-apiserver']}",
            f"--tls-cert-file={p.serving_cert}",
            f"--tls-private-key-file={p.serving_key}",
            f"--client-ca-file={p.ca_cert}",
            f"--token-auth-file={p.tokens}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--storage-backend=etcd3",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _component_kubeconfig(self, cluster: str) -> str:
        return str(self.kubeconfig(cluster))

    def _start_controllers(self, state: dict[str, Any], cluster: str) -> None:
        c = state["clusters"][cluster]
        p = pki_mod.load(self.root / "pki")
        kc = self._component_kubeconfig(cluster)
        self._spawn(
            state,
            cluster,
            "kube-controller-manager",
            [
                f"--kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={c['ports']['kube-controller-manager']}",
                "--leader-elect=false",
                f"--service-account-private-key-file={p.sa_key}",
                f"--root-ca-file={p.ca_cert}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._spawn(
            state,
            cluster,
            "kube-scheduler",
            [
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={c['ports']['kube-scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        self._spawn(
            state,
            cluster,
            "kwok",
            [
                f"--kubeconfig={kc}",
                f"--config={tools.kwok_stages_file()}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--node-ip=10.0.0.1",
                "--cidr=10.0.0.0/16",
                f"--server-address=127.0.0.1:{c['ports']['kwok']}",
                "--node-lease-duration-seconds=40",
                "--v=INFO",
            ],
        )

    def _write_kubeconfig(self, cluster: str, port: int, token: str, ca: Path) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            # CA inlined so the file is self-contained: it can be put in a Secret as it is
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                    },
                }
            ],
            "users": [{"name": f"{cluster}-admin", "user": {"token": token}}],
            "contexts": [
                {"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-admin"}}
            ],
            "current-context": cluster,
        }
        path = self.kubeconfig(cluster)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    # ------------------------------------------------------------------ health
    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root / "pki" / "ca.crt"))

    def _get(self, url: str, *, token: str | None = None, verify: bool = True) -> int:
        ctx = self._ssl() if verify else ssl._create_unverified_context()
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (OSError, ssl.SSLError):
            return 0

    def _apiserver_ready(self, cluster: str) -> bool:
        token = pki_mod.load(self.root / "pki").admin_token
        return self._get(f"{self.server(cluster)}/readyz", token=token) == 200

    def _component_healthy(self, port: int) -> bool:
        return self._get(f"https://127.0.0.1:{port}/healthz", verify=False) == 200

    def _etcd_healthy(self, port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    # ------------------------------------------------------------------ kubectl
    def kubectl(self, cluster: str, *args: str, input: str | None = None) -> str:
        proc = subprocess.run(
            [str(tools.binary("kubectl")), "--kubeconfig", str(self.kubeconfig(cluster)), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise FleetError(f"kubectl {' '.join(args)} on {cluster} failed: {proc.stderr.strip()}")
        return proc.stdout

    def _node_manifests(self, cluster: str) -> list[dict[str, Any]]:
        return [n for pool in self.config.pools_of(cluster) for n in node_pool_manifests(pool)]

    def add_nodes(self, cluster: str, pool: NodePool, timeout: float = 60.0) -> list[str]:
        """Add a pool of fake GPU nodes to a running cluster and wait until they are Ready:
        on the local fleet, what labelling GPU nodes `aifactory.dev/module=NAME` is on a real
        cluster. Returns the node names."""
        self._require(cluster)
        docs = node_pool_manifests(pool)
        self.kubectl(cluster, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
        names = [d["metadata"]["name"] for d in docs]
        self.kubectl(
            cluster,
            "wait",
            "--for=condition=Ready",
            f"--timeout={timeout:.0f}s",
            *(f"node/{n}" for n in names),
        )
        return names

    def _create_nodes(self, cluster: str) -> None:
        docs = self._node_manifests(cluster)
        if docs:
            self.kubectl(cluster, "apply", "-f", "-", input=yaml.safe_dump_all(docs))

    def _schedules(self, cluster: str) -> bool:
        """Create a probe Pod (no resources asked) and report whether kube-scheduler bound it
        and kwok runs it within a few seconds; the probe is deleted either way."""
        name = f"fleet-probe-{os.getpid()}-{time.monotonic_ns()}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.10"}],
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
            },
        }
        try:
            self.kubectl(cluster, "create", "-f", "-", input=json.dumps(pod))
            self.kubectl(
                cluster,
                "wait",
                f"pod/{name}",
                "-n",
                "default",
                "--for=jsonpath={.status.phase}=Running",
                "--timeout=5s",
            )
            return True
        except (FleetError, subprocess.TimeoutExpired):
            return False
        finally:
            with contextlib.suppress(FleetError, subprocess.TimeoutExpired):
                self.kubectl(
                    cluster,
                    "delete",
                    "pod",
                    name,
                    "-n",
                    "default",
                    "--wait=false",
                    "--ignore-not-found",
                )

    def _cluster_settled(self, cluster: str) -> bool:
        """Nodes Ready (kwok is running) and the default ServiceAccount exists (kcm is running)."""
        try:
            out = self.kubectl(cluster, "get", "nodes", "-o", "json")
            self.kubectl(cluster, "get", "serviceaccount", "default", "-n", "default")
        except FleetError:
            return False
        items = json.loads(out)["items"]
        want = sum(p.nodes for p in self.config.pools_of(cluster))
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n["status"].get("conditions", [])
            )
        ]
        return len(ready) >= want

    # ------------------------------------------------------------------ lifecycle
    def is_up(self) -> bool:
        state = self._load_state()
        if not state:
            return False
        pids = [state["etcd"].get("pid", 0)]
        for c in state["clusters"].values():
            pids += list(c["pids"].values())
        return all(p and _alive(p) for p in pids)

    def up(self) -> float:
        """Start everything and wait until every cluster can run GPU Pods; returns seconds taken."""
        start = time.monotonic()
        missing = tools.missing()
        if missing:
            names = ", ".join(t.name for t in missing)
            raise FleetError(
                f"missing binaries: {names} (looked in {tools.bin_dir()}); run `make tools`"
            )
        if self._load_state() and any(_alive(p) for p in self._all_pids()):
            raise FleetError(
                f"a fleet is already running under {self.root}; "
                "run `python -m hack.fleet down` first"
            )
        if self.root.exists():
            shutil.rmtree(self.root)
        self.log_dir.mkdir(parents=True)
        p = pki_mod.create(self.root / "pki")
        state: dict[str, Any] = {
            "config": {
                "members": list(self.config.members),
                "pools": {
                    c: [asdict(x) for x in self.config.pools_of(c)] for c in self.config.clusters
                },
            },
            "etcd": {"port": _free_port(), "peer_port": _free_port(), "pid": 0},
            "clusters": {},
        }
        for cluster in self.config.clusters:
            state["clusters"][cluster] = {
                "ports": {
                    n: _free_port()
                    for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
                },
                "pids": {},
            }
        self._save_state(state)
        try:
            self._start_all(state, p)
        except BaseException:
            self.down()
            raise
        return time.monotonic() - start

    def _start_all(self, state: dict[str, Any], p: pki_mod.Pki) -> None:
        e = state["etcd"]
        self._spawn(
            state,
            None,
            "etcd",
            [
                "--name=fleet",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{e['port']}",
                f"--advertise-client-urls=http://127.0.0.1:{e['port']}",
                f"--listen-peer-urls=http://127.0.0.1:{e['peer_port']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{e['peer_port']}",
                f"--initial-cluster=fleet=http://127.0.0.1:{e['peer_port']}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )
        timeout = self.config.ready_timeout
        _wait("etcd", lambda: self._etcd_healthy(e["port"]), timeout, self.log_dir / "etcd.log")
        for cluster in self.config.clusters:
            self._write_kubeconfig(
                cluster,
                state["clusters"][cluster]["ports"]["kube-apiserver"],
                p.admin_token,
                p.ca_cert,
            )
            self._spawn(state, cluster, "kube-apiserver", self._apiserver_args(state, cluster))
        for cluster in self.config.clusters:
            _wait(
                f"{cluster} kube-apiserver /readyz",
                functools.partial(self._apiserver_ready, cluster),
                timeout,
                self.log_dir / f"{cluster}-kube-apiserver.log",
            )
            self._start_controllers(state, cluster)
            self._create_nodes(cluster)
        for cluster in self.config.clusters:
            for comp in ("kube-controller-manager", "kube-scheduler"):
                port = state["clusters"][cluster]["ports"][comp]
                _wait(
                    f"{cluster} {comp} /healthz",
                    functools.partial(self._component_healthy, port),
                    timeout,
                    self.log_dir / f"{cluster}-{comp}.log",
                )
            _wait(
                f"{cluster} GPU nodes Ready and default ServiceAccount",
                functools.partial(self._cluster_settled, cluster),
                timeout,
                self.log_dir / f"{cluster}-kwok.log",
            )
        if self.config.gateway_api:
            for member in self.config.members:
                self.install_gateway_api(member)

    def install_gateway_api(self, cluster: str) -> None:
        """Apply the pinned Gateway API standard-channel CRDs and wait until HTTPRoute is
        served (the real schema and CEL rules, as a cluster with a Gateway controller has)."""
        for f in tools.gateway_api_crds():
            self.kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(f))
        self.kubectl(
            cluster,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/httproutes.gateway.networking.k8s.io",
        )

    def _all_pids(self) -> list[int]:
        state = self._load_state()
        if not state:
            return []
        pids = [int(state["etcd"].get("pid") or 0)]
        for c in state["clusters"].values():
            pids += [int(x) for x in c["pids"].values()]
        return [p for p in pids if p]

    def down(self) -> None:
        """Stop every process of the fleet; control planes first, etcd last. Keeps logs."""
        state = self._load_state()
        if not state:
            return
        cluster_pids = [int(x) for c in state["clusters"].values() for x in c["pids"].values()]
        _terminate(cluster_pids)
        _terminate([int(state["etcd"].get("pid") or 0)])
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.root / "etcd", ignore_errors=True)

    def stop(self, cluster: str) -> None:
        """Take one cluster's kube-apiserver down, as if the member became unreachable."""
        state = self._require(cluster)
        pid = int(state["clusters"][cluster]["pids"].get("kube-apiserver") or 0)
        _terminate([pid])
        state["clusters"][cluster]["pids"]["kube-apiserver"] = 0
        self._save_state(state)

    def start(self, cluster: str) -> None:
        """Bring a stopped kube-apiserver back on the same port, so kubeconfigs stay valid."""
        state = self._require(cluster)
        pid = int(state["clusters"][cluster]["pids"].get("kube-apiserver") or 0)
        if pid and _alive(pid):
            return
        port = int(state["clusters"][cluster]["ports"]["kube-apiserver"])
        if _port_busy(port):
            raise FleetError(
                f"cannot start {cluster}: port {port} is busy (used by another process)"
            )
        self._spawn(state, cluster, "kube-apiserver", self._apiserver_args(state, cluster))
        _wait(
            f"{cluster} kube-apiserver /readyz",
            lambda: self._apiserver_ready(cluster),
            self.config.ready_timeout,
            self.log_dir / f"{cluster}-kube-apiserver.log",
        )
        # /readyz is the apiserver alone: kube-scheduler's and kwok's watches reconnect with
        # backoff (up to 30 s after a long outage), and a Pod created meanwhile stays Pending
        # long enough for the operator to call it stuck. Back means: it schedules again.
        if any(p.nodes for p in self.config.pools_of(cluster)):
            _wait(
                f"{cluster} schedules a Pod again",
                functools.partial(self._schedules, cluster),
                self.config.ready_timeout,
                self.log_dir / f"{cluster}-kube-scheduler.log",
            )

    def _require(self, cluster: str) -> dict[str, Any]:
        state = self._load_state()
        if not state:
            raise FleetError(
                f"no fleet is running under {self.root}; run `python -m hack.fleet up`"
            )
        if cluster not in state["clusters"]:
            raise FleetError(
                f"unknown cluster {cluster!r}; clusters are {', '.join(state['clusters'])}"
            )
        return state

    def register_members(self, namespace: str = "aifactory-system") -> list[str]:
        """Store each member's kubeconfig in a hub Secret named after the member.

        This is how a platform team registers a remote module; AIFactoryModules point at these
        Secrets with spec.cluster.kubeconfigSecretRef.
        """
        docs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        ]
        for member in self.members:
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": member,
                        "namespace": namespace,
                        "labels": {"aifactory.dev/member-cluster": member},
                    },
                    "type": "Opaque",
                    "data": {
                        "kubeconfig": base64.b64encode(
                            self.kubeconfig(member).read_bytes()
                        ).decode()
                    },
                }
            )
        self.kubectl(HUB, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
        return self.members

    def status(self) -> dict[str, dict[str, str]]:
        """Per cluster and component: running/stopped, and whether the apiserver answers."""
        state = self._load_state()
        out: dict[str, dict[str, str]] = {}
        if not state:
            return out
        out["etcd"] = {
            "etcd": "running" if _alive(int(state["etcd"].get("pid") or 0)) else "stopped"
        }
        for cluster, c in state["clusters"].items():
            row = {
                name: ("running" if pid and _alive(int(pid)) else "stopped")
                for name, pid in c["pids"].items()
            }
            row["server"] = f"https://127.0.0.1:{c['ports']['kube-apiserver']}"
            row["ready"] = "yes" if self._apiserver_ready(cluster) else "no"
            out[cluster] = row
        return out


def node_pool_manifests(pool: NodePool) -> list[dict[str, Any]]:
    """The fake GPU nodes of one pool, as kwok manages them (annotation kwok.x-k8s.io/node)."""
    k8s = tools.versions()["kubernetes"]
    nodes = []
    for i in range(pool.nodes):
        name = f"{pool.module}-{pool.gpu_model.lower()}-{i}"
        resources = {
            "cpu": "64",
            "memory": "512Gi",
            "pods": "110",
            GPU_RESOURCE: str(pool.gpus_per_node),
        }
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        KWOK_NODE_ANNOTATION: "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        MODULE_LABEL: pool.module,
                        GPU_MODEL_LABEL: pool.gpu_model,
                        GPU_MEMORY_LABEL: str(pool.gpu_memory_gib * 1024),
                        "nvidia.com/gpu.count": str(pool.gpus_per_node),
                    },
                },
                "spec": {},
                "status": {
                    "allocatable": resources,
                    "capacity": resources,
                    "nodeInfo": {
                        "kubeletVersion": f"fake-{k8s}",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                },
            }
        )
    return nodes
