"""The operator at fleet scale on the local fleet: how fast are deployments placed and Ready?

    python bench/operator_scale.py [--modules 100] [--deployments 400] [--members 0]
                                   [--write docs/benchmarks.md]

Starts a fleet under `.fleet-scale/` with `--modules` modules of one kwok node with 8 H100 each
(node pools on the hub, plus `--members` member clusters of one module each), runs the operator
with default settings and the webhook off, applies `--deployments` InferenceDeployments at once
(1 GPU per replica, 1-4 replicas from the demand of one region, 1.5 on average so the fleet has
room for them, 100 ms SLO), then:

1. times until every deployment is Placed and Ready (from a watch on the hub);
2. changes the demand of 10% of them at once and times each until placed again;
3. loses a module (its node deleted) and times until its replicas are Ready elsewhere.

Reports deployments placed per second, spec-change-to-Placed latency (p50/p99, from the
operator's own histogram and from the watch), operator RSS and CPU, and the requests the
operator made per second. Timing targets live here, never in tests (issue #15).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pycountry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hack.benchdoc import write_section  # noqa: E402
from hack.demo import install  # noqa: E402
from hack.fleet import HUB, Fleet, FleetConfig, NodePool  # noqa: E402
from tests.e2e.helpers import OperatorProcess, operator_env, wait_for  # noqa: E402

CITIES = Path("/work/shared/data/geo/geonames_cities_pop500k.csv")
NS = "scale"
#: requests per second of a deployment's one region, and how often each is drawn
RPS = (50, 150, 250, 350)
RPS_WEIGHTS = (0.70, 0.15, 0.10, 0.05)
GPUS_PER_MODULE = 8
SECTION = "## Operator at fleet scale (issue #15)"


def cities(n: int, seed: int) -> list[tuple[str, str, float, float]]:
    """(name, ISO country, latitude, longitude) of `n` real cities (GeoNames, CC BY 4.0)."""
    rows: list[tuple[str, str, float, float]] = []
    if CITIES.exists():
        with CITIES.open() as f:
            for r in csv.DictReader(f):
                rows.append(
                    (
                        r.get("name", "city"),
                        r.get("countrycode") or r.get("country_code") or r.get("iso2") or "US",
                        float(r.get("latitude") or 0),
                        float(r.get("longitude") or 0),
                    )
                )
    # only assigned ISO 3166-1 codes (GeoNames uses XK for Kosovo, which the API rejects)
    rows = [r for r in rows if pycountry.countries.get(alpha_2=r[1]) is not None]
    if not rows:
        rows = [("Frankfurt", "DE", 50.11, 8.68), ("Dallas", "US", 32.78, -96.8)]
    rng = random.Random(seed)
    return [rng.choice(rows) for _ in range(n)]


def module(name: str, city: tuple[str, str, float, float], member: str | None) -> dict[str, Any]:
    _, country, lat, lon = city
    cluster: dict[str, Any] = (
        {"kubeconfigSecretRef": {"namespace": "aifactory-system", "name": member}}
        if member
        else {"nodeSelector": {"aifactory.dev/module": name}}
    )
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": name},
        "spec": {
            "location": {"country": country, "latitude": lat, "longitude": lon},
            "energy": {
                "sources": [{"type": "grid", "share": 1.0}],
                "carbonIntensity": 100 + (hash(name) % 400),
                "powerBudgetKW": 20,
                "pue": 1.2,
            },
            "capacity": {
                "gpus": [
                    {"model": "H100", "count": GPUS_PER_MODULE, "memoryGiB": 80, "powerW": 700}
                ]
            },
            "cluster": cluster,
        },
    }


def deployment(i: int, city: tuple[str, str, float, float], rps: float) -> dict[str, Any]:
    _, country, lat, lon = city
    return {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": f"d{i:05d}", "namespace": NS},
        "spec": {
            "model": {"name": f"model-{i}", "image": "registry.example/serve:1.0"},
            "resources": {"gpusPerReplica": 1, "gpuModels": ["H100"]},
            "replicas": {"min": 1, "max": 4},
            "throughputPerReplica": 100,
            "demand": {
                "regions": [
                    {
                        "name": "users",
                        "country": country,
                        "latitude": lat,
                        "longitude": lon,
                        "requestsPerSecond": rps,
                    }
                ]
            },
            "slo": {"maxLatencyMs": 100},
        },
    }


class Watcher:
    """First times each deployment was seen decided (status for its generation), Placed (every
    replica found a module) and Ready, per (name, generation), from a watch."""

    def __init__(self, fleet: Fleet) -> None:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(fleet.kubeconfig(HUB)))
        self.decided: dict[tuple[str, int], float] = {}
        self.placed: dict[tuple[str, int], float] = {}
        self.ready: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import client, watch

        api = client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(
                    api.list_namespaced_custom_object,
                    "aifactory.dev",
                    "v1alpha1",
                    NS,
                    "inferencedeployments",
                    timeout_seconds=30,
                ):
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    st = obj.get("status") or {}
                    gen = int(st.get("observedGeneration") or 0)
                    conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
                    now = time.monotonic()
                    if "Placed" in conds:
                        self.decided.setdefault((name, gen), now)
                    if conds.get("Placed") == "True":
                        self.placed.setdefault((name, gen), now)
                    if conds.get("Ready") == "True":
                        self.ready.setdefault((name, gen), now)
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.5)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()


def create_all(
    fleet: Fleet, objects: list[dict[str, Any]], threads: int = 8, verb: str = "create"
) -> float:
    """Create (or merge-patch the spec of) InferenceDeployments concurrently, as a GitOps
    tool syncing a repository does; seconds taken."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client, config

    api = client.CustomObjectsApi(
        config.new_client_from_config(config_file=str(fleet.kubeconfig(HUB)))
    )

    def create(obj: dict[str, Any]) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if verb == "create":
            api.create_namespaced_custom_object(
                "aifactory.dev", "v1alpha1", ns, "inferencedeployments", obj
            )
        else:
            api.patch_namespaced_custom_object(
                "aifactory.dev", "v1alpha1", ns, "inferencedeployments", name, {"spec": obj["spec"]}
            )

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, objects))
    return time.monotonic() - started


def baseline(fleet: Fleet, deps: list[dict[str, Any]], modules: list[str]) -> dict[str, float]:
    """The same replicas as plain Deployments applied straight to the hub, spread over the
    modules' nodes, without the operator: how fast this apiserver, kube-controller-manager,
    kube-scheduler and kwok make them Ready. The operator cannot beat it; the gap is ours."""
    from kubernetes import client, config

    from aifactory.api import InferenceDeployment
    from aifactory.clusters.workload import render

    api = config.new_client_from_config(config_file=str(fleet.kubeconfig(HUB)))
    apps = client.AppsV1Api(api)
    ns = "scale-baseline"
    # a kept fleet may still hold an earlier run's baseline
    fleet.kubectl(HUB, "delete", "namespace", ns, "--ignore-not-found", "--timeout=600s")
    fleet.kubectl(
        HUB,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    objs: list[dict[str, Any]] = []
    free = {m: GPUS_PER_MODULE for m in modules}
    cursor = 0
    for d in deps:
        infd = InferenceDeployment.model_validate(
            {**d, "metadata": {**d["metadata"], "namespace": ns}}
        )
        rps = d["spec"]["demand"]["regions"][0]["requestsPerSecond"]
        replicas = max(1, -(-int(rps) // 100))
        # first fit from a rotating start: spread like a scheduler, never beyond a node's GPUs
        for k in range(len(modules)):
            module = modules[(cursor + k) % len(modules)]
            if free[module] >= replicas:
                break
        else:
            raise SystemExit(f"baseline: no module has {replicas} free GPUs for {d['metadata']}")
        free[module] -= replicas
        cursor = (cursor + 1) % len(modules)
        deployment_obj = render(
            infd, module, replicas, {"aifactory.dev/module": module}, ("H100",)
        )[0]
        # not ours: the operator would take anything labelled as its own for an orphan
        deployment_obj["metadata"]["labels"] = {"bench": "baseline"}
        objs.append(deployment_obj)
    wanted = {o["metadata"]["name"]: int(o["spec"]["replicas"]) for o in objs}
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda o: apps.create_namespaced_deployment(ns, o), objs))
    created = time.monotonic() - t0

    def ready() -> bool:
        items = apps.list_namespaced_deployment(ns).items
        done = sum(1 for x in items if (x.status.ready_replicas or 0) >= wanted[x.metadata.name])
        return done == len(wanted)

    wait_for("baseline Deployments Ready", ready, timeout=1800, every=1.0)
    all_ready = time.monotonic() - t0
    fleet.kubectl(HUB, "delete", "namespace", ns, "--wait=true", "--timeout=600s")
    return {"baseline_apply_s": created, "baseline_ready_s": all_ready}


def proc_stats(pid: int) -> tuple[float, float]:
    """(peak RSS in MiB, CPU seconds) of a process from /proc."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(parts[11]) + int(parts[12])) / ticks


def scrape(port: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def requests_total(text: str) -> float:
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^aifactory_member_requests_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    )


def histogram_sum(text: str, name: str) -> float | None:
    m = re.search(rf"^{name}_sum ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def histogram_quantile(text: str, name: str, q: float) -> float | None:
    buckets: list[tuple[float, float]] = []
    for m in re.finditer(rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', text, re.M):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets.append((le, float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in sorted(buckets):
        if count >= q * total:
            return le
    return None


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modules", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=400)
    parser.add_argument("--members", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the fleet running")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the plain-Deployments baseline"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="AIFACTORY_NAME=VALUE",
        help="an operator setting other than the default (repeatable), e.g. "
        "AIFACTORY_RECORDS_ENABLED=false",
    )
    args = parser.parse_args(argv)
    for item in args.set:
        if not item.startswith("AIFACTORY_") or "=" not in item:
            parser.error(f"--set {item}: expected AIFACTORY_NAME=VALUE")
    rng = random.Random(args.seed)
    members = tuple(f"member-{i}" for i in range(args.members))
    hub_modules = [f"m{i:04d}" for i in range(args.modules - args.members)]
    pools: dict[str, tuple[NodePool, ...]] = {
        HUB: tuple(
            NodePool(module=m, gpu_model="H100", nodes=1, gpus_per_node=GPUS_PER_MODULE)
            for m in hub_modules
        )
    }
    for m in members:
        pools[m] = (NodePool(module=m, gpu_model="H100", nodes=1, gpus_per_node=GPUS_PER_MODULE),)
    config = FleetConfig(
        root=REPO / ".fleet-scale", members=members, pools=pools, ready_timeout=600
    )
    fleet = Fleet(config, attached=not args.keep)
    t = time.monotonic()
    if not fleet.is_up():
        fleet.up()
    fleet.register_members()
    install(fleet)
    up_s = time.monotonic() - t
    places = cities(args.modules + args.deployments, args.seed)
    mods = [module(m, places[i], None) for i, m in enumerate(hub_modules)] + [
        module(m, places[len(hub_modules) + i], m) for i, m in enumerate(members)
    ]
    fleet.kubectl(
        HUB,
        "apply",
        "--server-side",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": mods}),
    )
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    fleet.kubectl(HUB, "apply", "--server-side", "-f", "-", input=json.dumps(ns))
    # 1-4 replicas (50-350 rps at 100 rps per replica), mostly small: 1.5 on average,
    # so 400 deployments want 75% of 100 modules' 800 GPUs and the burst and the module
    # loss below still find room (a fleet with no room measures waiting, not placing)
    deps = [
        deployment(i, places[args.modules + i], rng.choices(RPS, weights=RPS_WEIGHTS)[0])
        for i in range(args.deployments)
    ]
    results: dict[str, Any] = {}
    if not args.no_baseline:
        results.update(baseline(fleet, deps, hub_modules or list(members)))
    env = operator_env(fleet.kubeconfig(HUB), AIFACTORY_WEBHOOK_ENABLED="false")
    for key in list(env):  # default settings, as the issue's measurement
        if key in (
            "AIFACTORY_HEARTBEAT_INTERVAL",
            "AIFACTORY_HEARTBEAT_TIMEOUT",
            "AIFACTORY_STATUS_INTERVAL",
            "AIFACTORY_TOLERATION_SECONDS",
        ):
            del env[key]
    env.update(item.split("=", 1) for item in args.set)
    op = OperatorProcess(env, fleet.log_dir / "operator-scale.log")
    op.start()
    assert op.proc is not None
    port = env["AIFACTORY_METRICS_PORT"]
    watcher = Watcher(fleet).start()
    try:
        wait_for("liveness", lambda: _ok(env["AIFACTORY_LIVENESS_PORT"]), timeout=120)
        wait_for(
            "every module Ready",
            lambda: all(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (m.get("status") or {}).get("conditions", [])
                )
                for m in json.loads(fleet.kubectl(HUB, "get", "afm", "-o", "json"))["items"]
            ),
            timeout=300,
        )
        req0 = requests_total(scrape(port))
        cpu0 = proc_stats(op.proc.pid)[1]
        t0 = time.monotonic()
        results["apply_s"] = create_all(fleet, deps)
        names = [d["metadata"]["name"] for d in deps]
        wait_for(
            "every deployment decided",
            lambda: all((n, 1) in watcher.decided for n in names),
            timeout=1800,
            every=0.5,
        )
        t_decided = max(watcher.decided[(n, 1)] for n in names) - t0
        placed = [n for n in names if (n, 1) in watcher.placed]
        t_placed = max((watcher.placed[(n, 1)] for n in placed), default=t0) - t0
        wait_for(
            "every placed deployment Ready",
            lambda: all((n, 1) in watcher.ready for n in placed),
            timeout=1800,
            every=1.0,
        )
        t_ready = max((watcher.ready[(n, 1)] for n in placed), default=t0) - t0
        elapsed = time.monotonic() - t0
        text = scrape(port)
        req1 = requests_total(text)
        rss, cpu1 = proc_stats(op.proc.pid)
        per = [watcher.placed[(n, 1)] - t0 for n in placed]
        results.update(
            deployments=len(names),
            all_decided_s=t_decided,
            placed_count=len(placed),
            all_placed_s=t_placed,
            all_ready_s=t_ready,
            placed_per_s=len(placed) / t_placed if t_placed > 0 else None,
            placed_p50=pct(per, 0.5),
            placed_p99=pct(per, 0.99),
            requests_per_s=(req1 - req0) / elapsed,
            cpu_share=(cpu1 - cpu0) / elapsed,
            rss_mib=rss,
            plans=histogram_sum(text, "aifactory_placement_batch_size"),
        )
        # 2. a burst of spec changes while the fleet is steady
        changed = rng.sample(deps, max(1, len(deps) // 10))
        for d in changed:
            d["spec"]["demand"]["regions"][0]["requestsPerSecond"] += 100
        t1 = time.monotonic()
        create_all(fleet, changed, verb="patch")
        cn = [d["metadata"]["name"] for d in changed]
        wait_for(
            "changed deployments decided",
            lambda: all((n, 2) in watcher.decided for n in cn),
            timeout=600,
        )
        lat = [watcher.decided[(n, 2)] - t1 for n in cn]
        text = scrape(port)
        results.update(
            burst=len(cn),
            burst_placed=sum(1 for n in cn if (n, 2) in watcher.placed),
            burst_p50=pct(lat, 0.5),
            burst_p99=pct(lat, 0.99),
            op_p50=histogram_quantile(text, "aifactory_placement_latency_seconds", 0.5),
            op_p99=histogram_quantile(text, "aifactory_placement_latency_seconds", 0.99),
        )
        # 3. losing a module: its node goes away
        infds = json.loads(fleet.kubectl(HUB, "get", "infd", "-n", NS, "-o", "json"))["items"]
        counts: dict[str, int] = {}
        for d in infds:
            for p in d.get("status", {}).get("placements", []):
                counts[p["module"]] = counts.get(p["module"], 0) + p["replicas"]
        victim = max((m for m in counts if m in hub_modules), key=lambda m: counts[m])
        affected = [
            d["metadata"]["name"]
            for d in infds
            if any(p["module"] == victim for p in d.get("status", {}).get("placements", []))
        ]
        t2 = time.monotonic()
        fleet.kubectl(HUB, "delete", "node", f"{victim}-h100-0", "--wait=false")

        def moved() -> bool:
            items = json.loads(fleet.kubectl(HUB, "get", "infd", "-n", NS, "-o", "json"))["items"]
            for d in items:
                if d["metadata"]["name"] not in affected:
                    continue
                st = d.get("status", {})
                if any(p["module"] == victim for p in st.get("placements", [])):
                    return False
                if not any(
                    c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])
                ):
                    return False
            return True

        wait_for("the lost module's replicas Ready elsewhere", moved, timeout=600, every=1.0)
        results.update(
            lost_module=victim,
            lost_replicas=counts[victim],
            failover_s=time.monotonic() - t2,
            rss_mib=max(results["rss_mib"], proc_stats(op.proc.pid)[0]),
            tracebacks=op.logs().count("Traceback"),
        )
    finally:
        watcher.stop()
        op.stop()
        if not args.keep:
            fleet.down()
    text = render(args, results, up_s)
    print(text)
    if args.write:
        write_section(args.write, text, SECTION)
    return 0


def _ok(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def render(args: argparse.Namespace, r: dict[str, Any], up_s: float) -> str:
    def f(v: Any, unit: str = "") -> str:
        return "-" if v is None else f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"

    rows = [
        (
            "time to create them (8 concurrent clients, as a GitOps sync)",
            f(r.get("apply_s"), " s"),
        ),
        (
            "time until every deployment has its decision in status (Placed True or False)",
            f(r.get("all_decided_s"), " s"),
        ),
        (
            "deployments with every replica placed",
            f"{r.get('placed_count')}/{r.get('deployments')}",
        ),
        ("time until the last of those is Placed", f(r.get("all_placed_s"), " s")),
        (
            "deployments placed per second, end to end on the real apiserver",
            f(r.get("placed_per_s")),
        ),
        (
            "time until every placed deployment is Ready",
            f(r.get("all_ready_s"), " s"),
        ),
        (
            "baseline, same run: the same replicas as plain Deployments applied straight to "
            "the hub (no operator), time until all Ready",
            f(r.get("baseline_ready_s"), " s"),
        ),
        ("plans made (one per deployment per cycle it was in)", f(r.get("plans"))),
        (
            "apply to Placed per deployment, p50 / p99",
            f"{f(r.get('placed_p50'), ' s')} / {f(r.get('placed_p99'), ' s')}",
        ),
        (
            f"spec change to its decision, burst of {r.get('burst')} changes "
            f"({r.get('burst_placed')} placed whole), p50 / p99 (watch)",
            f"{f(r.get('burst_p50'), ' s')} / {f(r.get('burst_p99'), ' s')}",
        ),
        (
            "spec change to Placed, operator histogram p50 / p99 (bucket bound)",
            f"{f(r.get('op_p50'), ' s')} / {f(r.get('op_p99'), ' s')}",
        ),
        (
            f"losing module {r.get('lost_module')} ({r.get('lost_replicas')} replicas): "
            "Ready elsewhere after",
            f(r.get("failover_s"), " s"),
        ),
        ("operator peak RSS", f(r.get("rss_mib"), " MiB")),
        ("operator CPU while placing (cores)", f(r.get("cpu_share"))),
        ("operator requests to clusters per second while placing", f(r.get("requests_per_s"))),
        ("tracebacks in the operator log", f(r.get("tracebacks"))),
    ]
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `python bench/operator_scale.py --modules {args.modules} --deployments "
            f"{args.deployments} --members {args.members}"
            + "".join(f" --set {item}" for item in args.set)
            + f"` (one run; fleet up in {up_s:.0f} s; "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
            f"{os.getloadavg()[0]:.1f} at the end, shared with other work). Operator with default "
            "settings (heartbeat 10 s, status 5 s, toleration 60 s, rebalance 300 s)"
            + ("" if not args.set else " but those set")
            + ", webhook off.",
            "",
            "| measured | value |",
            "| --- | --- |",
            *(f"| {a} | {b} |" for a, b in rows),
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
