"""Many concurrent creates, updates and deletes: the operator keeps up and never fails a handler
(issue #15: no shared state iterated across threads; every structure read off the event loop is
a snapshot or guarded)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.e2e.helpers import OperatorProcess, get_json, infd_manifest, is_ready, wait_for

pytestmark = pytest.mark.fleet

NS = "hammer-tests"
N = 30


def spec(rng: random.Random) -> dict[str, Any]:
    return {
        "resources": {"gpusPerReplica": 1, "gpuModels": ["L4", "L40S"]},
        "replicas": {"fixed": rng.randint(0, 2)},
        "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
    }


def test_concurrent_creates_updates_and_deletes_leave_no_exception_and_no_orphan(
    operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    kubectl("create", "namespace", NS, check=False)
    api = client.CustomObjectsApi(
        config.new_client_from_config(config_file=str(fleet.kubeconfig(HUB)))
    )
    tracebacks = operator.logs().count("Traceback")
    stop = threading.Event()
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            name = f"h{rng.randrange(N):02d}"
            action = rng.choice(["create", "update", "update", "delete"])
            try:
                if action == "create":
                    api.create_namespaced_custom_object(
                        "aifactory.dev",
                        "v1alpha1",
                        NS,
                        "inferencedeployments",
                        infd_manifest(name, NS, spec(rng)),
                    )
                elif action == "update":
                    api.patch_namespaced_custom_object(
                        "aifactory.dev",
                        "v1alpha1",
                        NS,
                        "inferencedeployments",
                        name,
                        {"spec": {"replicas": {"fixed": rng.randint(0, 3)}}},
                    )
                else:
                    api.delete_namespaced_custom_object(
                        "aifactory.dev", "v1alpha1", NS, "inferencedeployments", name
                    )
            except ApiException as exc:
                if exc.status not in (404, 409):  # racing each other is the point
                    errors.append(f"{action} {name}: {exc.status} {exc.reason}")

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(worker, i) for i in range(6)]
        time.sleep(30)  # the hammering lasts this long: the input of the test
        stop.set()
        for f in futures:
            f.result()
    assert errors == []

    def settled() -> bool:
        items = get_json(kubectl, "infd", "-n", NS)["items"]
        return all(
            is_ready(d) for d in items if not d["metadata"].get("deletionTimestamp")
        ) and not any(d["metadata"].get("deletionTimestamp") for d in items)

    wait_for("every surviving deployment Ready, every deleted one gone", settled, timeout=180)
    live = {d["metadata"]["name"] for d in get_json(kubectl, "infd", "-n", NS)["items"]}

    def no_orphans() -> bool:
        for cluster in fleet.clusters:
            for d in get_json(kubectl, "deployments", "-n", NS, cluster=cluster)["items"]:
                owner = d["metadata"]["labels"].get("aifactory.dev/inference-deployment")
                if owner not in live:
                    return False
        return True

    wait_for("no member Deployment without its InferenceDeployment", no_orphans, timeout=120)
    assert operator.logs().count("Traceback") == tracebacks, "a handler or task failed"
    kubectl("delete", "infd", "--all", "-n", NS, "--timeout=120s", timeout=150)
