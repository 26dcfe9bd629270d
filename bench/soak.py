"""Chaos soak of the operator on the sample fleet: does anything drop, leak or break?

    python bench/soak.py [--minutes 10] [--seed 1] [--reuse] [--write docs/benchmarks.md]

Loopback only, bounded in time. Starts the sample fleet (hub + reykjavik, paris, dallas and
four node-pool modules) under `.fleet-soak/` (or reuses it), applies the samples plus a few
soak deployments, runs the operator with short intervals, and for `--minutes` does one random
thing every 8-20 s:

* kill the operator (SIGKILL) and start it again;
* stop a member's apiserver, for less or more than tolerationSeconds, then start it;
* cordon a module, later uncordon it; drain a module, later uncordon it;
* spike a module's carbon intensity through a feed (short spikes, and lasting ones);
* spike a region's demand;
* apply a bad object (one the CRD refuses, one that names a missing policy, one no module fits).

Every second it samples, from the member clusters themselves, what users would notice:

* dips: a deployment's ready replicas falling below what it wants (counted once per fall,
  with the seconds until it recovers), outside member outages (replicas on a stopped cluster
  count as serving: the pods run, only its apiserver is down) and outside scale-ups; a
  deployment whose spec changed twice since the previous sample is not checked in that sample
  (what it wanted in between is unknown: a demand drop and its undo scale down, then up),
  and a fall is confirmed by reading the clusters again in reverse order (a replica either
  read saw was serving throughout: a handover completed between two reads is not a dip);
* sovereignty violations: a pod of an EU-restricted deployment running outside the EU/EEA;
* pods Pending longer than pendingTimeout;
* orphans: member Deployments whose InferenceDeployment is gone, after the run settles;
* handler exceptions: tracebacks in the operator's log.

The goal of issue #10 is zero of each. Results go to docs/benchmarks.md with `--write`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hack.benchdoc import write_section  # noqa: E402
from hack.demo import SAMPLE_FILES, apply_samples, install  # noqa: E402
from hack.fleet import HUB, Fleet  # noqa: E402
from hack.fleet.topology import config_from_modules  # noqa: E402
from tests.e2e.helpers import OperatorProcess, operator_env, wait_for  # noqa: E402

from aifactory.api.jurisdictions import EEA  # noqa: E402

NS = "soak"
PENDING_TIMEOUT = 30.0
TOLERATION = 15.0
SECTION = "## Chaos soak (issue #10)"

MODULE_COUNTRY = {
    "reykjavik": "IS",
    "oslo": "NO",
    "paris": "FR",
    "frankfurt": "DE",
    "dallas": "US",
    "singapore": "SG",
    "warsaw": "PL",
}


def soak_deployments() -> list[dict[str, Any]]:
    def d(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "model": {"name": name, "image": "registry.example/serve:1.0"},
                "resources": {"gpusPerReplica": 1},
                **spec,
            },
        }

    region = {
        "name": "eu-west",
        "country": "IE",
        "latitude": 53.35,
        "longitude": -6.26,
        "requestsPerSecond": 600,
    }
    return [
        d(
            "elastic",
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L4", "L40S", "A100"]},
                "replicas": {"min": 2, "max": 20},
                "throughputPerReplica": 100,
                "demand": {"regions": [region]},
                "slo": {"maxLatencyMs": 60, "minModules": 2},
                "energy": {"maxCarbonIntensity": 450},
            },
        ),
        d(
            "batch",
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["A100", "H100"]},
                "replicas": {"fixed": 6},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        ),
    ]


def owner_ref(labels: dict[str, str]) -> str:
    """The "namespace/name" of the InferenceDeployment a member object belongs to."""
    ns = labels.get("aifactory.dev/inference-namespace")
    return f"{ns}/{labels.get('aifactory.dev/inference-deployment')}"


@dataclass
class Stats:
    samples: int = 0
    dips: int = 0
    dip_seconds: float = 0.0
    violations: int = 0
    pending_too_long: int = 0
    #: samples not checked for a dip: the spec changed twice since the previous sample
    want_unknown: int = 0
    #: falls seen in one pass over the clusters and not when read again in reverse order
    read_skew: int = 0
    orphans: int = 0
    tracebacks: int = 0
    actions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dip_log: list[str] = field(default_factory=list)
    #: every chaos action and undo, timed (printed next to the dips it may explain)
    timeline: list[tuple[float, str]] = field(default_factory=list)


class Soak:
    def __init__(self, fleet: Fleet, op: OperatorProcess, rng: random.Random) -> None:
        from kubernetes import client, config

        self.fleet, self.op, self.rng = fleet, op, rng
        self.api = {
            c: config.new_client_from_config(config_file=str(fleet.kubeconfig(c)))
            for c in fleet.clusters
        }
        self.client = client
        self.stopped: dict[str, float] = {}  # cluster -> stopped at
        self.last_ready: dict[tuple[str, str], int] = {}  # (cluster, ref) -> ready
        self.prev_by_cluster: dict[tuple[str, str], int] = {}
        self.below_since: dict[str, float] = {}
        self.prev_ready: dict[str, int] = {}
        self.prev_want: dict[str, int] = {}
        self.prev_generation: dict[str, int] = {}
        self.stats = Stats()
        self.undo: list[tuple[float, str, Any]] = []

    # -------------------------------------------------------------------------- reading
    def kubectl(self, *args: str, cluster: str = HUB, input: str | None = None) -> str:
        proc = subprocess.run(
            [
                str(self.fleet.binary("kubectl")),
                "--kubeconfig",
                str(self.fleet.kubeconfig(cluster)),
                *args,
            ],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout

    def hub_deployments(self) -> list[dict[str, Any]]:
        api = self.client.CustomObjectsApi(self.api[HUB])
        try:
            return list(
                api.list_cluster_custom_object(
                    "aifactory.dev", "v1alpha1", "inferencedeployments", _request_timeout=(2, 5)
                )["items"]
            )
        except Exception:
            return []

    def member_state(self) -> tuple[dict[str, int], list[dict[str, Any]], list[Any]]:
        """ready per deployment ref, our pods, our member Deployments (reachable clusters)."""
        ready: dict[str, int] = defaultdict(int)
        pods: list[dict[str, Any]] = []
        workloads: list[Any] = []
        for cluster, api in self.api.items():
            if cluster in self.stopped:
                for (c, ref), n in self.last_ready.items():
                    if c == cluster:
                        ready[ref] += n
                continue
            try:
                items = (
                    self.client.AppsV1Api(api)
                    .list_deployment_for_all_namespaces(
                        label_selector="app.kubernetes.io/managed-by=aifactory-operator",
                        _request_timeout=(2, 5),
                    )
                    .items
                )
                plist = (
                    self.client.CoreV1Api(api)
                    .list_pod_for_all_namespaces(
                        label_selector="app.kubernetes.io/managed-by=aifactory-operator",
                        _request_timeout=(2, 5),
                    )
                    .items
                )
            except Exception:
                continue
            per: dict[str, int] = defaultdict(int)
            for w in items:
                labels = w.metadata.labels or {}
                ref = owner_ref(labels)
                per[ref] += int(w.status.ready_replicas or 0)
                workloads.append((cluster, ref, w))
            for ref, n in per.items():
                ready[ref] += n
                self.last_ready[(cluster, ref)] = n
            for c, ref in list(self.last_ready):
                if c == cluster and ref not in per:
                    del self.last_ready[(c, ref)]
            for p in plist:
                pods.append({"cluster": cluster, "pod": p})
        return ready, pods, workloads

    def ready_by_cluster(self, clusters: list[str]) -> dict[tuple[str, str], int]:
        """Ready replicas per (cluster, deployment ref), read in the given order (no side
        effects; clusters that do not answer are left out)."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for cluster in clusters:
            if cluster in self.stopped:
                continue
            try:
                items = (
                    self.client.AppsV1Api(self.api[cluster])
                    .list_deployment_for_all_namespaces(
                        label_selector="app.kubernetes.io/managed-by=aifactory-operator",
                        _request_timeout=(2, 5),
                    )
                    .items
                )
            except Exception:
                continue
            for w in items:
                out[(cluster, owner_ref(w.metadata.labels or {}))] += int(
                    w.status.ready_replicas or 0
                )
        return out

    def _serving_through(self, ref: str, again: dict[tuple[str, str], int]) -> int:
        """Per cluster the larger of the two readings: a replica counts if either pass saw it."""
        clusters = {c for c, r in self.last_ready if r == ref} | {c for c, r in again if r == ref}
        return sum(max(self.last_ready.get((c, ref), 0), again.get((c, ref), 0)) for c in clusters)

    def sample(self) -> None:
        now = time.monotonic()
        deployments = self.hub_deployments()
        if not deployments:
            return
        ready, pods, _ = self.member_state()
        by_cluster, self.prev_by_cluster = self.prev_by_cluster, dict(self.last_ready)
        self.stats.samples += 1
        for d in deployments:
            meta = d["metadata"]
            ref = f"{meta['namespace']}/{meta['name']}"
            st = d.get("status") or {}
            want = int(st.get("replicas") or 0)
            if not want or meta.get("deletionTimestamp"):
                continue
            have = ready.get(ref, 0)
            prev = self.prev_ready.get(ref)
            prev_want = self.prev_want.get(ref, want)
            generation = int(meta.get("generation") or 0)
            prev_generation = self.prev_generation.get(ref, generation)
            self.prev_ready[ref], self.prev_want[ref] = have, want
            self.prev_generation[ref] = generation
            if prev is None:
                continue
            if generation - prev_generation >= 2 and ref not in self.below_since:
                # two spec changes within one sample: what was wanted in between is unknown
                # (a demand drop and its undo: a legitimate scale-down, then up again, looks
                # like a fall below the same want on both sides)
                self.stats.want_unknown += 1
                continue
            if ref in self.below_since:
                if have >= want or want < prev_want:
                    self.stats.dip_seconds += now - self.below_since.pop(ref)
                continue
            # a fall below what is wanted, not a scale-up still on its way
            if have < prev and have < min(want, prev_want):
                # Clusters are read one after the other: a handover that completes between
                # two reads (the new replica read before it was Ready, the old one after it
                # was removed) looks like a fall. Read again in the opposite order: a replica
                # seen by either pass was serving throughout; a real fall shows in both.
                again = self.ready_by_cluster(list(reversed(list(self.api))))
                through = self._serving_through(ref, again)
                if through >= min(want, prev_want):
                    self.stats.read_skew += 1
                    self.prev_ready[ref] = through
                    continue
                self.stats.dips += 1
                self.below_since[ref] = now
                fell = ", ".join(
                    f"{c} {n} -> {self.last_ready.get((c, r), 0)}"
                    for (c, r), n in sorted(by_cluster.items())
                    if r == ref and self.last_ready.get((c, r), 0) < n
                )
                recent = [t for at, t in self.stats.timeline if now - at <= 60]
                self.stats.dip_log.append(
                    f"{time.strftime('%H:%M:%S')} {ref}: ready {prev} -> {have}, want {want}"
                    + (f" (fell on {fell})" if fell else "")
                    + (f"; chaos in the minute before: {'; '.join(recent)}" if recent else "")
                )
        eu = {
            f"{d['metadata']['namespace']}/{d['metadata']['name']}"
            for d in deployments
            if d["spec"].get("dataClassification") == "restricted"
        }
        for entry in pods:
            p = entry["pod"]
            labels = p.metadata.labels or {}
            ref = owner_ref(labels)
            module = labels.get("aifactory.dev/placed-on", "")
            if ref in eu and p.status.phase == "Running" and MODULE_COUNTRY.get(module) not in EEA:
                self.stats.violations += 1
            if p.status.phase == "Pending" and p.metadata.creation_timestamp is not None:
                age = time.time() - p.metadata.creation_timestamp.timestamp()
                if age > PENDING_TIMEOUT + 15:  # reported by then, and being replaced
                    self.stats.pending_too_long += 1

    # -------------------------------------------------------------------------- chaos
    def act(self) -> None:
        now = time.monotonic()
        for item in [u for u in self.undo if u[0] <= now]:
            self.undo.remove(item)
            self._undo(item[1], item[2])
        choice = self.rng.choice(
            ["kill", "member", "member", "cordon", "drain", "carbon", "carbon", "demand", "bad"]
        )
        before = len(self.undo)
        getattr(self, f"_{choice}")()
        self.stats.actions[choice] += 1
        target = self.undo[-1][2] if len(self.undo) > before else None
        self._log(f"{choice} {target}" if target else choice)

    def _log(self, what: str) -> None:
        self.stats.timeline.append((time.monotonic(), f"{time.strftime('%H:%M:%S')} {what}"))

    def _kill(self) -> None:
        self.op.kill()
        self.op.start()

    def _member(self) -> None:
        free = [c for c in self.fleet.members if c not in self.stopped]
        if not free:
            return
        cluster = self.rng.choice(free)
        self.fleet.stop(cluster)
        self.stopped[cluster] = time.monotonic()
        length = self.rng.choice([5.0, TOLERATION + 20.0])
        self.undo.append((time.monotonic() + length, "start", cluster))

    def _cordon(self) -> None:
        module = self.rng.choice(list(MODULE_COUNTRY))
        self.kubectl("patch", "afm", module, "--type=merge", "-p", '{"spec":{"schedulable":false}}')
        self.undo.append((time.monotonic() + self.rng.uniform(20, 60), "uncordon", module))

    def _drain(self) -> None:
        module = self.rng.choice(list(MODULE_COUNTRY))
        patch = {
            "metadata": {"annotations": {"aifactory.dev/drain": "true"}},
            "spec": {"schedulable": False},
        }
        self.kubectl("patch", "afm", module, "--type=merge", "-p", json.dumps(patch))
        self.undo.append((time.monotonic() + self.rng.uniform(40, 90), "uncordon", module))

    def _feed(self, module: str, carbon: float, source: str = "soak-feed") -> None:
        patch = {
            "status": {
                "energy": {
                    "carbonIntensity": carbon,
                    "renewableShare": 0.5,
                    "source": source,
                    "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            }
        }
        self.kubectl(
            "patch", "afm", module, "--subresource=status", "--type=merge", "-p", json.dumps(patch)
        )

    def _carbon(self) -> None:
        module = self.rng.choice(list(MODULE_COUNTRY))
        self._feed(module, 600)
        self.undo.append((time.monotonic() + self.rng.choice([5.0, 40.0]), "carbon", module))

    def _demand(self) -> None:
        factor = self.rng.choice([0.5, 1.5, 2.5])
        manifest = soak_deployments()[0]
        manifest["spec"]["demand"]["regions"][0]["requestsPerSecond"] = 600 * factor
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(manifest)
        )
        self.undo.append((time.monotonic() + self.rng.uniform(20, 60), "demand", None))

    def _bad(self) -> None:
        kind = self.rng.choice(["crd", "policy", "unfit"])
        base = soak_deployments()[1]
        base["metadata"]["name"] = f"bad-{kind}"
        if kind == "crd":
            base["spec"]["throughputPerReplica"] = 1e-300
        elif kind == "policy":
            base["spec"]["sovereigntyPolicies"] = ["does-not-exist"]
        else:
            base["spec"]["resources"]["gpuModels"] = ["B200"]
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(base))
        self.undo.append((time.monotonic() + 30.0, "delete", base["metadata"]["name"]))

    def _undo(self, what: str, arg: Any) -> None:
        self._log(f"undo: {what} {arg or ''}".rstrip())
        if what == "start":
            self.fleet.start(arg)
            self.stopped.pop(arg, None)
        elif what == "uncordon":
            patch = {
                "metadata": {"annotations": {"aifactory.dev/drain": None}},
                "spec": {"schedulable": True},
            }
            self.kubectl("patch", "afm", arg, "--type=merge", "-p", json.dumps(patch))
        elif what == "carbon":
            self._feed(arg, 0, source="spec")
        elif what == "demand":
            self.kubectl(
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                "-",
                input=json.dumps(soak_deployments()[0]),
            )
        elif what == "delete":
            self.kubectl("delete", "infd", "-n", NS, arg, "--wait=false")

    def settle(self) -> None:
        for item in list(self.undo):
            self._undo(item[1], item[2])
        self.undo.clear()
        for cluster in list(self.stopped):
            self.fleet.start(cluster)
            self.stopped.pop(cluster, None)


def orphans(soak: Soak) -> int:
    live = {f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in soak.hub_deployments()}
    _, _, workloads = soak.member_state()
    return sum(1 for _, ref, _ in workloads if ref not in live)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse a running .fleet-soak fleet")
    parser.add_argument(
        "--write", type=Path, help="append/replace the results section of this file"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    root = REPO / ".fleet-soak"
    fleet = Fleet(
        config_from_modules(REPO / "samples" / "modules.yaml", root=root), attached=not args.reuse
    )
    if not (args.reuse and fleet.is_up()):
        fleet.up()
    fleet.register_members()
    install(fleet)
    apply_samples(fleet, SAMPLE_FILES)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    fleet.kubectl(HUB, "apply", "--server-side", "-f", "-", input=json.dumps(namespace))
    for manifest in soak_deployments():
        fleet.kubectl(HUB, "apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    env = operator_env(
        fleet.kubeconfig(HUB),
        AIFACTORY_REBALANCE_INTERVAL="15",
        AIFACTORY_TOLERATION_SECONDS=str(TOLERATION),
        AIFACTORY_PENDING_TIMEOUT=str(PENDING_TIMEOUT),
        AIFACTORY_SIGNAL_TOLERANCE_SECONDS="20",
        AIFACTORY_DEMAND_STABILIZATION_WINDOW="30",
    )
    op = OperatorProcess(env, fleet.log_dir / "operator-soak.log")
    op.start()
    soak = Soak(fleet, op, rng)
    started = time.monotonic()
    try:
        op.wait_serving()
        wait_for(
            "every InferenceDeployment Ready",
            lambda: all(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (d.get("status") or {}).get("conditions", [])
                )
                for d in soak.hub_deployments()
            ),
            timeout=240,
        )
        end = time.monotonic() + args.minutes * 60
        next_act = time.monotonic() + rng.uniform(8, 20)
        while time.monotonic() < end:
            t0 = time.monotonic()
            soak.sample()
            if time.monotonic() >= next_act:
                soak.act()
                next_act = time.monotonic() + rng.uniform(8, 20)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        soak.settle()
        wait_for(
            "every deployment Ready after the chaos",
            lambda: all(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (d.get("status") or {}).get("conditions", [])
                )
                for d in soak.hub_deployments()
                if not d["metadata"]["name"].startswith("bad-")
            ),
            timeout=300,
        )
        wait_for("no orphans", lambda: orphans(soak) == 0, timeout=120)
    except AssertionError as exc:
        print(f"soak: {exc}", file=sys.stderr)
    finally:
        soak.stats.orphans = orphans(soak)
        log = op.logs()
        soak.stats.tracebacks = log.count("Traceback")
        op.stop()
        if not args.reuse:
            fleet.down()
    s = soak.stats
    took = time.monotonic() - started
    rows = [
        ("ready-replica dips below want (outside outages)", f"{s.dips} ({s.dip_seconds:.0f} s)"),
        ("sovereignty violations (pod-seconds)", str(s.violations)),
        (
            f"pods Pending longer than {PENDING_TIMEOUT:.0f} s + 15 s (pod-seconds)",
            str(s.pending_too_long),
        ),
        ("orphaned member objects after the run", str(s.orphans)),
        ("handler exceptions (tracebacks in the log)", str(s.tracebacks)),
        ("samples not checked for dips (spec changed twice in one sample)", str(s.want_unknown)),
        (
            "falls not confirmed by a second read in reverse order (handover between reads)",
            str(s.read_skew),
        ),
    ]
    actions = ", ".join(f"{k} {v}" for k, v in sorted(s.actions.items()))
    text = "\n".join(
        [
            SECTION,
            "",
            f"Command: `python bench/soak.py --minutes {args.minutes:g} --seed {args.seed}` "
            f"({took / 60:.1f} min with set-up; {s.samples} one-second samples; machine: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
            f"{os.getloadavg()[0]:.1f} at the end).",
            "",
            f"Chaos actions: {actions}. Operator: rebalanceInterval 15 s, tolerationSeconds "
            f"{TOLERATION:.0f} s, pendingTimeout {PENDING_TIMEOUT:.0f} s, signal tolerance 20 s, "
            "disruptionBudget 2.",
            "",
            "| measured | value |",
            "| --- | --- |",
            *(f"| {a} | {b} |" for a, b in rows),
            "",
            *(["Dips:", "", *(f"- {line}" for line in s.dip_log), ""] if s.dip_log else []),
        ]
    )
    print(text)
    if args.write:
        write_section(args.write, text, SECTION)
    bad = s.dips or s.violations or s.pending_too_long or s.orphans or s.tracebacks
    return 1 if bad else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
