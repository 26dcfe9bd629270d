"""Operator replicas as the chart runs them: Lease leader election, warm standbys.

Every process uses the chart's ServiceAccount token and the leader-election environment the
chart renders for two replicas (lease name, timings, namespace), with its own Pod name as
identity. They serve the webhook with one certificate, as Pods behind the chart's webhook
Service do; the test points a ValidatingWebhookConfiguration (the operator's own, from
`webhook_configuration`) at the replica it wants the apiserver to ask, standing in for the
Service's choice.

What a user relies on: exactly one replica (the Lease holder) plans and writes; a standby
answers admission correctly before it leads, because its caches are warm; a replica whose
caches are not warm is not Ready and refuses to guess; SIGKILL of the leader lets the standby
take over and place a new InferenceDeployment within 30 seconds.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hack.fleet import HUB, Fleet
from tests.chart.conftest import apply_samples
from tests.chart.helpers import (
    CHART,
    NAMESPACE,
    admission_review,
    chart_env,
    helm,
    sa_kubeconfig,
)
from tests.e2e.helpers import (
    OperatorProcess,
    condition,
    get_json,
    operator_env,
    pinned_to_dallas,
    sample_deployment,
    small_deployment,
    wait_for,
)

from aifactory.controllers.admission import NOT_WARM, webhook_configuration
from aifactory.controllers.startup import self_signed

pytestmark = pytest.mark.fleet

RELEASE = "ha"
ACCOUNT = f"{RELEASE}-aifactory-operator"
PODS = ("ha-aifactory-operator-5c8d7-x2k9q", "ha-aifactory-operator-5c8d7-m4t7z")
COLD_POD = "ha-aifactory-operator-5c8d7-c0ld1"
COLD_ACCOUNT = "ha-cold"
WEBHOOK = "ha-standby.aifactory.dev"
TAKEOVER_SECONDS = 30
#: the leader-election environment the chart gives two replicas
CHART_KEYS = ("AIFACTORY_NAMESPACE", "AIFACTORY_LEADER_ELECTION", "AIFACTORY_LEASE_")


@dataclass
class Replicas:
    leader: OperatorProcess
    standby: OperatorProcess
    lease: str
    cert: Path
    kubeconfig: Path
    directory: Path


def _http(port: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def readyz(op: OperatorProcess) -> int:
    return _http(op.env["AIFACTORY_METRICS_PORT"], "/readyz")[0]


def metric(op: OperatorProcess, name: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include `labels` (0 when absent)."""
    _, text = _http(op.env["AIFACTORY_METRICS_PORT"], "/metrics")
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


def holder(kubectl: Any, lease: str) -> str | None:
    """The Lease's holder (None while there is no Lease or nobody holds it)."""
    out = kubectl("get", "lease", "-n", NAMESPACE, lease, "-o", "json", check=False)
    if out.returncode != 0:
        assert "NotFound" in out.stderr, out.stderr
        return None
    value = (json.loads(out.stdout).get("spec") or {}).get("holderIdentity")
    return str(value) if value else None


def replica(kubeconfig: Path, pod: str, cert: Path, fleet: Fleet, **extra: str) -> OperatorProcess:
    """One operator process with the chart's leader-election env and `pod` as identity."""
    env = {
        k: v
        for k, v in chart_env("--set", "replicaCount=2", release=RELEASE).items()
        if k.startswith(CHART_KEYS)
    }
    assert env["AIFACTORY_LEADER_ELECTION"] == "true"
    op = OperatorProcess(
        operator_env(
            kubeconfig,
            **env,
            AIFACTORY_POD_NAME=pod,
            # served with the mounted certificate, configuration not ours: as in chart mode
            AIFACTORY_WEBHOOK_MANAGED="false",
            AIFACTORY_WEBHOOK_CERT_FILE=str(cert),
            AIFACTORY_WEBHOOK_KEY_FILE=str(cert.with_name("tls.key")),
            **extra,
        ),
        fleet.log_dir / f"operator-{pod}.log",
    )
    op.log.unlink(missing_ok=True)
    op.start()
    return op


def point_webhook_at(kubectl: Any, op: OperatorProcess, cert: Path) -> None:
    """The operator's own webhook configuration, sent to `op` (as the Service would)."""
    config = webhook_configuration(
        WEBHOOK,
        {
            "url": f"https://127.0.0.1:{op.env['AIFACTORY_WEBHOOK_PORT']}",
            "caBundle": base64.b64encode(cert.read_bytes()).decode(),
        },
    )
    kubectl("apply", "-f", "-", input=json.dumps(config))


@pytest.fixture(scope="module")
def replicas(
    hub_ready: None, fleet: Fleet, kubectl: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """The chart with two replicas' RBAC; the first replica started becomes the leader, the
    second one is started once the first holds the Lease, so roles are known."""
    apply_samples(fleet)
    helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        "replicaCount=2",
        # the test serves and configures the webhook itself (no in-cluster Service here)
        "--set",
        "webhook.enabled=false",
        kubeconfig=fleet.kubeconfig(HUB),
    )
    directory = tmp_path_factory.mktemp("ha")
    kubeconfig = sa_kubeconfig(kubectl, fleet, ACCOUNT, directory / "sa.kubeconfig")
    cert, _ = self_signed("127.0.0.1", directory)
    lease = chart_env("--set", "replicaCount=2", release=RELEASE)["AIFACTORY_LEASE_NAME"]
    kubectl("delete", "lease", "-n", NAMESPACE, lease, "--ignore-not-found")
    started: list[OperatorProcess] = []
    try:
        first = replica(kubeconfig, PODS[0], cert, fleet)
        started.append(first)
        wait_for("the first replica to hold the Lease", lambda: holder(kubectl, lease) == PODS[0])
        second = replica(kubeconfig, PODS[1], cert, fleet)
        started.append(second)
        yield Replicas(first, second, lease, cert, kubeconfig, directory)
    finally:
        kubectl("delete", "validatingwebhookconfiguration", WEBHOOK, "--ignore-not-found")
        kubectl(
            "delete",
            "infd",
            "-n",
            "batch",
            "ha-before",
            "ha-after",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=90s",
            check=False,
            timeout=120,
        )
        for op in started:
            op.stop()
        helm(
            "uninstall",
            RELEASE,
            "-n",
            NAMESPACE,
            "--wait",
            kubeconfig=fleet.kubeconfig(HUB),
            check=False,
        )
        kubectl("delete", "lease", "-n", NAMESPACE, lease, "--ignore-not-found", check=False)


def _placed(kubectl: Any, name: str) -> bool:
    obj = get_json(kubectl, "infd", "-n", "batch", name)
    c = condition(obj, "Placed")
    return bool(
        c
        and c["status"] == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_only_the_lease_holder_plans_and_writes(replicas: Replicas, kubectl: Any) -> None:
    leader, standby = replicas.leader, replicas.standby
    wait_for("the standby's caches to be warm", lambda: readyz(standby) == 200, timeout=90)
    assert readyz(leader) == 200
    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("ha-before")))
    wait_for("ha-before placed by the leader", lambda: _placed(kubectl, "ha-before"), timeout=90)

    assert holder(kubectl, replicas.lease) == PODS[0]
    assert metric(leader, "aifactory_leader") == 1
    assert metric(standby, "aifactory_leader") == 0
    assert metric(leader, "aifactory_placement_batch_size_count") > 0
    # the standby planned nothing and wrote nothing to the hub (it only read the Lease)
    assert metric(standby, "aifactory_placement_batch_size_count") == 0
    for verb in ("POST", "PUT", "PATCH", "DELETE"):
        assert metric(standby, "aifactory_member_requests_total", cluster="hub", verb=verb) == 0
    assert metric(standby, "aifactory_member_requests_total", cluster="hub", verb="GET") > 0
    assert "became the leader" not in standby.logs()


def test_standby_answers_admission_with_warm_caches(replicas: Replicas, kubectl: Any) -> None:
    """The reported bug: a standby with empty caches admitted a forbidden pin and denied a
    valid deployment. Here the apiserver asks the standby, before it has ever led."""
    standby = replicas.standby
    wait_for("the standby's caches to be warm", lambda: readyz(standby) == 200, timeout=90)
    point_webhook_at(kubectl, standby, replicas.cert)
    asked = metric(standby, "aifactory_reconcile_total", controller="admission")

    forbidden = pinned_to_dallas(sample_deployment("eu-assistant"))
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(forbidden), check=False)
    assert out.returncode != 0
    assert "admission webhook" in out.stderr and "eu-restricted-data" in out.stderr, out.stderr

    valid = sample_deployment("eu-assistant")
    valid["metadata"]["name"] = "eu-assistant-ha"
    kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(valid))

    assert metric(standby, "aifactory_reconcile_total", controller="admission") >= asked + 2
    assert holder(kubectl, replicas.lease) == PODS[0], "the standby must not have led yet"


def test_standby_takes_over_within_30s(replicas: Replicas, kubectl: Any) -> None:
    leader, standby = replicas.leader, replicas.standby
    wait_for("ha-before placed", lambda: _placed(kubectl, "ha-before"), timeout=90)

    leader.stop(signal.SIGKILL)  # a crash: the Lease stays held until it expires
    killed = time.monotonic()
    kubectl("apply", "-f", "-", input=json.dumps(small_deployment("ha-after")))
    wait_for(
        "ha-after placed by the former standby",
        lambda: _placed(kubectl, "ha-after"),
        timeout=TAKEOVER_SECONDS,
        every=0.5,
    )
    took = time.monotonic() - killed
    assert took < TAKEOVER_SECONDS
    assert holder(kubectl, replicas.lease) == PODS[1]
    assert metric(standby, "aifactory_leader") == 1
    assert "became the leader" in standby.logs()
    print(f"standby placed a new InferenceDeployment {took:.1f}s after the leader died")


def test_replica_with_cold_caches_is_not_ready_and_does_not_guess(
    replicas: Replicas, kubectl: Any, fleet: Fleet
) -> None:
    """A replica that cannot read the hub yet (here: its account has no RBAC) is kept out of
    the webhook Service by /readyz and, asked directly, refuses with a retryable message
    instead of guessing; once it can read the hub it is Ready and answers correctly."""
    kubectl("create", "serviceaccount", COLD_ACCOUNT, "-n", NAMESPACE, check=False)
    kubeconfig = sa_kubeconfig(kubectl, fleet, COLD_ACCOUNT, replicas.directory / "cold.kubeconfig")
    cold = replica(kubeconfig, COLD_POD, replicas.cert, fleet)
    binding = f"{COLD_ACCOUNT}-reads-the-hub"
    try:
        try:
            wait_for("the cold replica's webhook", cold.serving, timeout=90)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{cold.logs()[-3000:]}") from None
        assert readyz(cold) == 503
        forbidden = pinned_to_dallas(sample_deployment("eu-assistant"))
        valid = sample_deployment("eu-assistant")
        for obj in (forbidden, valid):
            answer = admission_review(cold.env["AIFACTORY_WEBHOOK_PORT"], obj, replicas.cert)
            assert answer["allowed"] is False
            assert answer["status"]["code"] == 503
            assert answer["status"]["message"] == NOT_WARM
        assert readyz(cold) == 503

        # the same RBAC as the chart's replicas: its watches succeed, its caches warm up
        kubectl(
            "create",
            "clusterrolebinding",
            binding,
            f"--clusterrole={ACCOUNT}",
            f"--serviceaccount={NAMESPACE}:{COLD_ACCOUNT}",
        )
        wait_for("the cold replica to warm up", lambda: readyz(cold) == 200, timeout=90)
        refused = admission_review(cold.env["AIFACTORY_WEBHOOK_PORT"], forbidden, replicas.cert)
        assert refused["allowed"] is False and refused["status"]["code"] == 403
        assert "eu-restricted-data" in refused["status"]["message"]
        admitted = admission_review(cold.env["AIFACTORY_WEBHOOK_PORT"], valid, replicas.cert)
        assert admitted["allowed"] is True, admitted
    finally:
        cold.stop()
        kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
        kubectl("delete", "serviceaccount", COLD_ACCOUNT, "-n", NAMESPACE, check=False)
