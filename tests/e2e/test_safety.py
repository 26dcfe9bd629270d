"""Never drop serving replicas by accident (issue #10), on the real local fleet.

Each test is one row of the issue's table: what was done, and what users expect. Serving
replicas are sampled about once a second from the member clusters themselves.

The session operator runs with short intervals (tests/e2e/conftest.py): heartbeatTimeout 6 s,
tolerationSeconds 10 s, rebalanceInterval 4 s, disruptionBudget 2, pendingTimeout 30 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.e2e.helpers import (
    REPO,
    ConditionRecorder,
    OperatorProcess,
    ServingSampler,
    apply_json,
    condition,
    ctl,
    delete_all_deployments,
    events_of,
    get_json,
    infd_manifest,
    is_ready,
    operator_env,
    placed,
    wait_for,
)

pytestmark = pytest.mark.fleet

NS = "safety-tests"
BUDGET = 2


@pytest.fixture(scope="module")
def namespace(operator: OperatorProcess, kubectl: Any) -> Iterator[str]:
    delete_all_deployments(kubectl)  # a clean fleet: other modules' tests leave samples
    kubectl("create", "namespace", NS, check=False)
    yield NS
    delete_all_deployments(kubectl)


def obj(kubectl: Any, name: str) -> dict[str, Any]:
    return dict(get_json(kubectl, "infd", "-n", NS, name))


def ready(kubectl: Any, name: str) -> bool:
    return is_ready(obj(kubectl, name))


def reason(kubectl: Any, name: str, type_: str) -> tuple[str, str, str]:
    c = condition(obj(kubectl, name), type_) or {}
    return c.get("status", ""), c.get("reason", ""), c.get("message", "")


def delete(kubectl: Any, *names: str) -> None:
    for n in names:
        kubectl("delete", "infd", "-n", NS, n, "--timeout=90s", check=False, timeout=120)


def uncordon(fleet: Fleet, module: str) -> None:
    ctl(fleet, "uncordon", module)


def moves_per_step(kubectl: Any, name: str) -> list[int]:
    """Replicas each rescheduling/rebalancing step moved, from the Events' messages."""
    out = []
    for e in events_of(kubectl, NS, name, "Rescheduled", "Rebalanced"):
        m = re.search(r"moved (\d+) replicas", e.get("message", ""))
        if m:
            out.append(int(m.group(1)))
    return out


# ------------------------------------------------------------------------------------- drain
def test_drain_is_make_before_break_and_within_the_budget(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """drain paris: replicas leave only as their replacements are Ready, two at a time."""
    name = "drain-mbb"
    apply_json(
        kubectl,
        infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
                "replicas": {"fixed": 10},
                "placement": {"modules": ["paris", "frankfurt"]},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        ),
    )
    try:
        wait_for(
            f"{name} on paris",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"paris": 10},
            timeout=90,
        )
        with ServingSampler(fleet, NS, name) as sampler:
            proc = ctl(fleet, "drain", "paris", "--wait", "180")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "drained" in proc.stdout
            wait_for(
                "paris' member Deployment removed",
                lambda: (
                    not get_json(
                        kubectl,
                        "deployments",
                        "-n",
                        NS,
                        "-l",
                        f"aifactory.dev/inference-deployment={name}",
                        cluster="paris",
                    )["items"]
                ),
                timeout=60,
            )
        assert placed(kubectl, NS, name) == {"frankfurt": 10}
        assert sampler.minimum >= 10, f"serving dropped to {sampler.minimum} during the drain"
        steps = moves_per_step(kubectl, name)
        assert steps and max(steps) <= BUDGET and sum(steps) == 10, steps
        assert reason(kubectl, name, "Degraded")[0] == "False"
    finally:
        uncordon(fleet, "paris")
        delete(kubectl, name)


def test_drain_leaves_replicas_with_nowhere_to_go_and_says_so(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """A pinned deployment, and one whose users only dallas can serve within the SLO, stay."""
    pinned = infd_manifest(
        "pinned-dallas",
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
            "replicas": {"fixed": 2},
            "placement": {"modules": ["dallas"]},
        },
    )
    local = infd_manifest(
        "texas-only",
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
            "replicas": {"min": 1, "max": 5},
            "throughputPerReplica": 100,
            "demand": {
                "regions": [
                    {
                        "name": "us-south",
                        "country": "US",
                        "latitude": 32.78,
                        "longitude": -96.80,
                        "requestsPerSecond": 200,
                    }
                ]
            },
            "slo": {"maxLatencyMs": 5},
        },
    )
    apply_json(kubectl, pinned, local)
    try:
        for n in ("pinned-dallas", "texas-only"):
            wait_for(
                f"{n} on dallas",
                lambda n=n: ready(kubectl, n) and set(placed(kubectl, NS, n)) == {"dallas"},
                timeout=90,
            )
        with (
            ServingSampler(fleet, NS, "pinned-dallas") as a,
            ServingSampler(fleet, NS, "texas-only") as b,
        ):
            proc = ctl(fleet, "drain", "dallas", "--wait", "60")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "not drained" in proc.stdout
        for n in ("pinned-dallas", "texas-only"):
            assert n in proc.stdout and "nowhere else to go" in proc.stdout
            assert placed(kubectl, NS, n) == {"dallas": 2}
            assert reason(kubectl, n, "Degraded")[:2] == ("True", "MoveBlocked")
        assert a.minimum >= 2 and b.minimum >= 2
    finally:
        uncordon(fleet, "dallas")
        delete(kubectl, "pinned-dallas", "texas-only")


# ------------------------------------------------------------------------------------- cordon
def test_cordon_moves_nothing_and_extra_replicas_go_elsewhere(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    name = "cordoned"

    def manifest(rps: float) -> dict[str, Any]:
        return infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
                "replicas": {"min": 1, "max": 20},
                "throughputPerReplica": 100,
                "demand": {
                    "regions": [
                        {
                            "name": "eu-west",
                            "country": "FR",
                            "latitude": 48.86,
                            "longitude": 2.35,
                            "requestsPerSecond": rps,
                        }
                    ]
                },
                "placement": {"modules": ["paris", "frankfurt", "warsaw"]},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        )

    apply_json(kubectl, manifest(800))
    try:
        wait_for(
            "8 replicas on paris",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"paris": 8},
            timeout=90,
        )
        proc = ctl(fleet, "cordon", "paris")
        assert proc.returncode == 0, proc.stderr
        with ServingSampler(fleet, NS, name) as sampler:
            apply_json(kubectl, manifest(1000))
            wait_for(
                "10 replicas, the 2 new ones off paris",
                lambda: ready(kubectl, name) and sum(placed(kubectl, NS, name).values()) == 10,
                timeout=90,
            )
        where = placed(kubectl, NS, name)
        assert where["paris"] == 8, where
        assert sampler.minimum >= 8
        assert moves_per_step(kubectl, name) == []
        assert not obj(kubectl, name)["status"].get("lastMoves")
    finally:
        uncordon(fleet, "paris")
        delete(kubectl, name)


# ------------------------------------------------------------------------------------- energy
def _feed(kubectl: Any, module: str, carbon: float, source: str = "test-feed") -> None:
    kubectl(
        "patch",
        "afm",
        module,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "energy": {
                        "carbonIntensity": carbon,
                        "renewableShare": 0.98,
                        "source": source,
                        "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                }
            }
        ),
    )


def test_short_carbon_spikes_move_nothing_a_lasting_breach_moves_make_before_break(
    namespace: str, kubectl: Any, fleet: Fleet, operator: OperatorProcess
) -> None:
    """Three 6-second spikes above maxCarbonIntensity (tolerance 20 s) move nothing; a breach
    that lasts moves every replica to the allowed module without a dip in serving."""
    operator.env["AIFACTORY_SIGNAL_TOLERANCE_SECONDS"] = "20"
    operator.restart()
    name = "carbon-spiky"
    apply_json(
        kubectl,
        infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L40S", "L4"]},
                "replicas": {"fixed": 4},
                "placement": {"modules": ["oslo", "paris"]},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
                "energy": {"maxCarbonIntensity": 100},
            },
        ),
    )
    try:
        wait_for(
            "on oslo",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"oslo": 4},
            timeout=90,
        )
        with ServingSampler(fleet, NS, name) as sampler:
            for _ in range(3):
                _feed(kubectl, "oslo", 450)
                time.sleep(6)  # the spike's length is the input here, not a wait for a state
                _feed(kubectl, "oslo", 30)
                time.sleep(6)
            assert placed(kubectl, NS, name) == {"oslo": 4}
            assert moves_per_step(kubectl, name) == []
            _feed(kubectl, "oslo", 450)
            wait_for(
                "all replicas on paris after the lasting breach",
                lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"paris": 4},
                timeout=120,
            )
            wait_for(
                "oslo's member Deployment removed",
                lambda: (
                    not get_json(
                        kubectl,
                        "deployments",
                        "-n",
                        NS,
                        "-l",
                        f"aifactory.dev/inference-deployment={name}",
                    )["items"]
                    or all(
                        d["metadata"]["labels"].get("aifactory.dev/placed-on") != "oslo"
                        for d in get_json(
                            kubectl,
                            "deployments",
                            "-n",
                            NS,
                            "-l",
                            f"aifactory.dev/inference-deployment={name}",
                        )["items"]
                    )
                ),
                timeout=60,
            )
        assert sampler.minimum >= 4, f"serving dropped to {sampler.minimum}"
        steps = moves_per_step(kubectl, name)
        assert steps and max(steps) <= BUDGET, steps
        eff = get_json(kubectl, "afm", "oslo")["status"]["effectiveEnergy"]
        assert eff["carbonIntensity"] == 450
    finally:
        _feed(kubectl, "oslo", 30, source="spec")
        del operator.env["AIFACTORY_SIGNAL_TOLERANCE_SECONDS"]
        operator.env["AIFACTORY_SIGNAL_TOLERANCE_SECONDS"] = "4"
        operator.restart()
        delete(kubectl, name)


# ------------------------------------------------------------------------------------- capacity
def _gpu_pod(name: str, model: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "someone-else"}},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": model},
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example/other:1",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }
            ],
        },
    }


def test_capacity_counts_other_tenants_and_decisions_in_flight(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """40 of paris' 48 H100 used by someone else; two 8-GPU deployments in one apply: one fits."""
    others = [_gpu_pod(f"tenant-{i}", "H100", 8) for i in range(5)]
    apply_json(kubectl, *others, cluster="paris")
    try:
        wait_for(
            "the other tenant's pods running",
            lambda: all(
                p["status"].get("phase") == "Running"
                for p in get_json(
                    kubectl, "pods", "-n", "default", "-l", "app=someone-else", cluster="paris"
                )["items"]
            ),
            timeout=60,
        )
        wait_for(
            "paris' status counts them",
            lambda: any(
                p["model"] == "H100" and p.get("gpusAllocated", 0) >= 40
                for p in get_json(kubectl, "afm", "paris")["status"]["capacity"]["gpus"]
            ),
            timeout=30,
        )
        big = [
            infd_manifest(
                n,
                NS,
                {
                    "resources": {"gpusPerReplica": 8, "gpuModels": ["H100"]},
                    "replicas": {"fixed": 1},
                    "placement": {"modules": ["paris"]},
                },
            )
            for n in ("big-a", "big-b")
        ]
        apply_json(kubectl, *big)
        wait_for(
            "one placed, the other unschedulable",
            lambda: (
                sorted(reason(kubectl, n, "Placed")[:2] for n in ("big-a", "big-b"))
                == [("False", "Unschedulable"), ("True", "Placed")]
            ),
            timeout=60,
        )
        winner = next(n for n in ("big-a", "big-b") if reason(kubectl, n, "Placed")[0] == "True")
        wait_for(f"{winner} Ready", lambda: ready(kubectl, winner), timeout=60)
        pending = [
            p
            for p in get_json(kubectl, "pods", "-n", NS, cluster="paris")["items"]
            if p["status"].get("phase") == "Pending"
        ]
        assert pending == []
    finally:
        kubectl(
            "delete",
            "pods",
            "-n",
            "default",
            "-l",
            "app=someone-else",
            "--wait=false",
            cluster="paris",
            check=False,
        )
        delete(kubectl, "big-a", "big-b")


def test_mixed_pool_deployment_does_not_cut_a_running_one(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """A100-only running on paris; a newcomer that takes H100 or A100 must not squeeze it."""
    a100 = infd_manifest(
        "a100-only",
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["A100"]},
            "replicas": {"fixed": 20},
            "placement": {"modules": ["paris"]},
        },
    )
    apply_json(kubectl, a100)
    try:
        wait_for("a100-only Ready", lambda: ready(kubectl, "a100-only"), timeout=90)
        either = infd_manifest(
            "h100-or-a100",
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["H100", "A100"]},
                "replicas": {"fixed": 30},
                "placement": {"modules": ["paris"]},
            },
        )
        with ServingSampler(fleet, NS, "a100-only") as sampler:
            apply_json(kubectl, either)
            wait_for("h100-or-a100 Ready", lambda: ready(kubectl, "h100-or-a100"), timeout=120)
            # a few more cycles: the running one must stay whole
            time.sleep(6)
        assert placed(kubectl, NS, "a100-only") == {"paris": 20}
        assert sampler.minimum >= 20
        assert reason(kubectl, "a100-only", "Placed")[0] == "True"
        assert reason(kubectl, "h100-or-a100", "Placed")[0] == "True"
    finally:
        delete(kubectl, "a100-only", "h100-or-a100")


def _set_pod_slots(kubectl: Any, module: str, model: str, slots: str) -> None:
    nodes = get_json(
        kubectl, "nodes", "-l", f"aifactory.dev/module={module},nvidia.com/gpu.product={model}"
    )["items"]
    for n in nodes:
        kubectl(
            "patch",
            "node",
            n["metadata"]["name"],
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"allocatable": {"pods": slots}, "capacity": {"pods": slots}}}),
        )


def test_pods_pending_too_long_are_reported_and_placed_elsewhere(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """frankfurt's L4 nodes take no more pods (a limit the operator does not model): the
    replicas stay Pending, are reported as PodsPending with the scheduler's words, then moved."""
    name = "stuck-pending"
    _set_pod_slots(kubectl, "frankfurt", "L4", "0")
    recorder = ConditionRecorder(fleet, NS, name).__enter__()
    try:
        apply_json(
            kubectl,
            infd_manifest(
                name,
                NS,
                {
                    "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
                    "replicas": {"fixed": 2},
                    "placement": {"modules": ["frankfurt", "warsaw"]},
                    "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
                },
            ),
        )
        wait_for(
            "first placed on frankfurt",
            lambda: "frankfurt" in placed(kubectl, NS, name),
            timeout=60,
        )
        degraded = wait_for(
            "Degraded PodsPending naming the scheduler's reason",
            lambda: recorder.has("Degraded", "PodsPending"),
            timeout=120,
        )
        assert degraded[1] == "True" and "Too many pods" in degraded[3], degraded
        wait_for(
            "re-placed on warsaw and Ready",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"warsaw": 2},
            timeout=120,
        )
        assert any(
            "Too many pods" in e["message"] for e in events_of(kubectl, NS, name, "PodsPending")
        )
        # the fleet plan (frankfurt is greener) does not send them back while the block lasts
        time.sleep(3 * 4)  # three rebalance intervals of the session operator
        assert placed(kubectl, NS, name) == {"warsaw": 2}
    finally:
        recorder.__exit__()
        _set_pod_slots(kubectl, "frankfurt", "L4", "110")
        delete(kubectl, name)


# ------------------------------------------------------------------------------------- members
def test_a_members_rejection_is_reported_as_what_it_is(
    namespace: str, kubectl: Any, fleet: Fleet, operator: OperatorProcess
) -> None:
    """A member's admission policy refuses the Deployment: MemberRejected with its message,
    the module stays Reachable, and the operator does not hammer the member."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-blocked-images"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["deployments"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.spec.template.spec.containers.all(c, "
                    "!c.image.startsWith('registry.example/blocked'))",
                    "message": "images from registry.example/blocked are not allowed here",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "no-blocked-images"},
        "spec": {"policyName": "no-blocked-images", "validationActions": ["Deny"]},
    }
    apply_json(kubectl, policy, binding, cluster="dallas")
    name = "rejected"
    manifest = infd_manifest(
        name,
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
            "replicas": {"fixed": 1},
            "placement": {"modules": ["dallas"]},
        },
    )
    manifest["spec"]["model"]["image"] = "registry.example/blocked:1"
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vap-probe", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "vap-probe"}},
            "template": {
                "metadata": {"labels": {"app": "vap-probe"}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/blocked:1"}]},
            },
        },
    }

    def enforced() -> bool:
        # the apiserver enforces a new policy a moment after it is stored: ask it
        proc = kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            cluster="dallas",
            input=json.dumps(probe),
            check=False,
        )
        return proc.returncode != 0 and "registry.example/blocked" in proc.stderr

    try:
        wait_for("the member's policy in force", enforced, timeout=30)
        apply_json(kubectl, manifest)
        wait_for(
            "Degraded MemberRejected",
            lambda: reason(kubectl, name, "Degraded")[1] == "MemberRejected",
            timeout=90,
        )
        message = reason(kubectl, name, "Degraded")[2]
        assert "registry.example/blocked are not allowed here" in message
        assert reason(kubectl, name, "Stalled")[:2] == ("True", "MemberRejected")
        assert (condition(get_json(kubectl, "afm", "dallas"), "Reachable") or {}).get(
            "status"
        ) == "True"
        assert any(
            "not allowed here" in e["message"]
            for e in events_of(kubectl, NS, name, "MemberRejected")
        )
        assert "not allowed here" in operator.logs()
        # a permanent rejection is not retried in a loop: a few attempts at most
        attempts = operator.logs().count("apply Deployment safety-tests/rejected-dallas")
        time.sleep(6)
        assert (
            operator.logs().count("apply Deployment safety-tests/rejected-dallas") <= attempts + 1
        )
        # a fixed spec goes through
        manifest["spec"]["model"]["image"] = "registry.example/serve:1.0"
        apply_json(kubectl, manifest)
        wait_for("Ready once the spec is fixed", lambda: ready(kubectl, name), timeout=90)
        assert reason(kubectl, name, "Degraded")[0] == "False"
    finally:
        kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            "no-blocked-images",
            cluster="dallas",
            check=False,
        )
        delete(kubectl, name)


def test_a_hung_member_slows_only_what_touches_it(
    namespace: str, kubectl: Any, fleet: Fleet
) -> None:
    """paris' apiserver frozen (SIGSTOP): admission answers, a deployment elsewhere is placed
    and becomes Ready; paris resumes afterwards."""
    pid = int(fleet._load_state()["clusters"]["paris"]["pids"]["kube-apiserver"])
    os.kill(pid, signal.SIGSTOP)
    name = "elsewhere"
    try:
        manifest = infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L40S"]},
                "replicas": {"fixed": 2},
                "placement": {"modules": ["oslo", "frankfurt"]},
            },
        )
        # admission answers from memory: a short request timeout is enough
        kubectl(
            "apply", "--server-side", "--request-timeout=10s", "-f", "-", input=json.dumps(manifest)
        )
        wait_for(
            "placed and Ready elsewhere while paris hangs", lambda: ready(kubectl, name), timeout=90
        )
    finally:
        os.kill(pid, signal.SIGCONT)
        delete(kubectl, name)


def test_scale_up_within_toleration_goes_to_usable_modules(
    namespace: str, kubectl: Any, fleet: Fleet, operator: OperatorProcess
) -> None:
    """reykjavik NotReady but within tolerationSeconds: its 2 replicas stay; 4 new go elsewhere."""
    operator.env["AIFACTORY_TOLERATION_SECONDS"] = "300"
    operator.restart()
    name = "tolerated"

    def manifest(n: int) -> dict[str, Any]:
        return infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["A100"]},
                "replicas": {"fixed": n},
                "placement": {"modules": ["reykjavik", "paris"]},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        )

    apply_json(kubectl, manifest(2))
    try:
        wait_for(
            "on reykjavik",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"reykjavik": 2},
            timeout=90,
        )
        fleet.stop("reykjavik")
        wait_for(
            "reykjavik NotReady",
            lambda: (
                (condition(get_json(kubectl, "afm", "reykjavik"), "Ready") or {}).get("status")
                == "False"
            ),
            timeout=60,
        )
        apply_json(kubectl, manifest(6))

        def four_ready_on_paris() -> bool:
            placements = obj(kubectl, name)["status"]["placements"]
            by_module = {p["module"]: p for p in placements}
            return {m: p["replicas"] for m, p in by_module.items()} == {
                "reykjavik": 2,
                "paris": 4,
            } and by_module["paris"].get("readyReplicas", 0) == 4

        wait_for(
            "4 new replicas Ready on paris, reykjavik's 2 kept", four_ready_on_paris, timeout=90
        )
    finally:
        fleet.start("reykjavik")
        operator.env["AIFACTORY_TOLERATION_SECONDS"] = "10"
        operator.restart()
        delete(kubectl, name)


# ------------------------------------------------------------------------------------- process
def test_periodic_work_survives_a_hub_outage_and_failover_still_works(
    namespace: str, kubectl: Any, fleet: Fleet, operator: OperatorProcess
) -> None:
    """The hub apiserver down for 65 s (longer than kopf's default retries): afterwards module
    heartbeats resume and losing a member still fails its replicas over."""
    name = "after-outage"
    apply_json(
        kubectl,
        infd_manifest(
            name,
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["A100"]},
                "replicas": {"fixed": 2},
                "placement": {"modules": ["reykjavik", "paris"]},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        ),
    )
    try:
        wait_for(
            "on reykjavik",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"reykjavik": 2},
            timeout=90,
        )
        tracebacks = operator.logs().count("Traceback")
        fleet.stop(HUB)
        time.sleep(65)  # the outage's length is the input of this test
        fleet.start(HUB)
        before = get_json(kubectl, "afm", "paris")["status"]["lastHeartbeatTime"]
        wait_for(
            "module heartbeats resumed",
            lambda: get_json(kubectl, "afm", "paris")["status"]["lastHeartbeatTime"] > before,
            timeout=60,
        )
        fleet.stop("reykjavik")
        wait_for(
            "failed over to paris and Ready",
            lambda: ready(kubectl, name) and placed(kubectl, NS, name) == {"paris": 2},
            timeout=120,
        )
        assert operator.proc is not None and operator.proc.poll() is None
        # the outage is logged as retries, never as a task or handler dying
        assert operator.logs().count("Traceback") == tracebacks
    finally:
        fleet.start("reykjavik")
        delete(kubectl, name)


def test_sigterm_exits_within_the_grace_period_even_without_the_hub(
    namespace: str, fleet: Fleet, tmp_path: Any
) -> None:
    env = operator_env(
        fleet.kubeconfig(HUB),
        AIFACTORY_SHUTDOWN_GRACE_SECONDS="5",
        AIFACTORY_WEBHOOK_ENABLED="false",
    )
    op = OperatorProcess(env, tmp_path / "operator-sigterm.log")
    op.start()
    assert op.proc is not None
    wait_for("liveness answers", lambda: _live(env["AIFACTORY_LIVENESS_PORT"]), timeout=60)
    fleet.stop(HUB)
    try:
        started = time.monotonic()
        op.proc.send_signal(signal.SIGTERM)
        op.proc.wait(timeout=30)
        assert time.monotonic() - started < 20, "the operator must not outlive its grace period"
    finally:
        fleet.start(HUB)
        op.kill()


def _live(port: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def test_a_busy_port_is_a_clear_fatal_error(fleet: Fleet, tmp_path: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = operator_env(fleet.kubeconfig(HUB), AIFACTORY_METRICS_PORT=str(port))
        proc = subprocess.run(
            [sys.executable, "-m", "aifactory"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert f"metrics_port (AIFACTORY_METRICS_PORT) {port} is already in use" in proc.stderr


def test_zero_replicas_wanted_and_placed_is_ready(namespace: str, kubectl: Any) -> None:
    name = "scaled-to-zero"
    apply_json(kubectl, infd_manifest(name, NS, {"replicas": {"fixed": 0}}))
    try:
        kubectl(
            "wait", "--for=condition=Ready", "infd", "-n", NS, name, "--timeout=60s", timeout=90
        )
        assert reason(kubectl, name, "Placed")[:2] == ("True", "NoReplicasWanted")
        assert reason(kubectl, name, "Stalled")[0] == "False"
    finally:
        delete(kubectl, name)
