"""Accountability on the local fleet (issue #14): hash-chained decision records, OpenReports
compliance evidence, module reliability, and measured-latency SLOs that move replicas.

The session operator runs with heartbeatTimeout 6 s, tolerationSeconds 10 s, rebalanceInterval
4 s, signal tolerance 4 s / 2 readings, SLO and report rounds every 2 s (tests/e2e/conftest.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hack.fleet import Fleet
from tests.e2e.helpers import (
    ConditionRecorder,
    OperatorProcess,
    apply_json,
    condition,
    ctl,
    elastic_spec,
    events_of,
    get_json,
    infd_manifest,
    is_ready,
    placed,
    region,
    sample_deployment,
    wait_for,
)
from tests.prometheus_server import (
    INSTALL_HINT,
    JOB,
    Exporter,
    Prometheus,
    log_tail,
    start_prometheus,
)

from aifactory.audit.chain import record_hash

pytestmark = pytest.mark.fleet

NS = "accountability-tests"
TOLERATION = 10.0


@pytest.fixture(scope="module")
def namespace(operator: OperatorProcess, kubectl: Any) -> Iterator[str]:
    kubectl("create", "namespace", NS, check=False)
    yield NS
    kubectl("delete", "infd", "--all", "-n", NS, "--timeout=90s", check=False, timeout=120)


def records(kubectl: Any, name: str | None = None) -> list[dict[str, Any]]:
    items = get_json(kubectl, "placementrecords")["items"]
    if name is not None:
        items = [r for r in items if r["spec"]["deployment"]["name"] == name]
    return sorted(items, key=lambda r: r["spec"]["sequence"])


def cells(record: dict[str, Any], side: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in record["spec"].get(side) or []:
        out[c["module"]] = out.get(c["module"], 0) + c["replicas"]
    return out


def delete(kubectl: Any, name: str) -> None:
    kubectl("delete", "infd", "-n", NS, name, "--timeout=90s", check=False, timeout=120)


def metrics_text(operator: OperatorProcess) -> str:
    port = operator.env["AIFACTORY_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value (prometheus_client writes labels sorted by name)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def module_ready(kubectl: Any, module: str) -> str:
    return str((condition(get_json(kubectl, "afm", module), "Ready") or {}).get("status"))


# ------------------------------------------------------------------------ decision records
def test_failover_and_rebalance_records_survive_a_restart_and_tampering_is_named(
    namespace: str, operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    # carbon-only H100 workload on reykjavik (a member) or oslo (a hub node pool): it is placed
    # on reykjavik, fails over to oslo when reykjavik stops answering
    probe = infd_manifest(
        "records-failover",
        NS,
        {
            "resources": {"gpusPerReplica": 1, "gpuModels": ["H100"]},
            "replicas": {"fixed": 4},
            "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            "placement": {"modules": ["reykjavik", "oslo"]},
        },
    )
    try:
        apply_json(kubectl, probe)
        wait_for(
            "records-failover Ready on reykjavik",
            lambda: (
                is_ready(get_json(kubectl, "infd", "-n", NS, "records-failover"))
                and placed(kubectl, NS, "records-failover") == {"reykjavik": 4}
            ),
            timeout=90,
        )
        first = wait_for(
            "a Placed record", lambda: records(kubectl, "records-failover"), timeout=30
        )[0]
        assert first["spec"]["reason"] == "Placed"
        assert cells(first, "before") == {} and cells(first, "after") == {"reykjavik": 4}
        assert first["spec"]["deployment"]["dataClassification"] == "internal"
        assert set(first["spec"]["inputs"]) == {"modules", "policies", "demand"}
        assert first["spec"]["cost"]["total"] > 0

        fleet.stop("reykjavik")
        try:
            failover = wait_for(
                "a Failover record",
                lambda: next(
                    (
                        r
                        for r in records(kubectl, "records-failover")
                        if r["spec"]["reason"] == "Failover"
                    ),
                    None,
                ),
                timeout=TOLERATION + 40,
            )
        finally:
            fleet.start("reykjavik")
        assert cells(failover, "before") == {"reykjavik": 4}
        assert cells(failover, "after") == {"oslo": 4}
        facts = {m["name"]: m for m in failover["spec"]["modules"]}
        assert facts["reykjavik"]["ready"] is False and facts["oslo"]["ready"] is True
        assert facts["reykjavik"]["country"] == "IS"
        assert failover["spec"]["previousHash"]
        wait_for("reykjavik Ready again", lambda: module_ready(kubectl, "reykjavik") == "True", 60)

        # a restarted operator continues the same chain from the hub's newest record
        operator.kill()
        head = records(kubectl)[-1]["spec"]  # the last one the old process wrote
        operator.start()
        operator.wait_serving()
        # a rebalance: frankfurt's solar feed at noon, then at night: replicas move to oslo
        solar = infd_manifest(
            "records-rebalance",
            NS,
            {
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L40S"]},
                "replicas": {"fixed": 3},
                "throughputPerReplica": 10,
                "demand": {"regions": [region("de-central", 10)]},
                "slo": {"maxLatencyMs": 20, "minModules": 1},
                "objective": {"latencyWeight": 0.0, "carbonWeight": 1.0},
            },
        )
        _feed(kubectl, "frankfurt", carbon=12, renewable=0.9, source="solar-feed")
        try:
            apply_json(kubectl, solar)
            wait_for(
                "records-rebalance on frankfurt",
                lambda: placed(kubectl, NS, "records-rebalance") == {"frankfurt": 3},
                timeout=90,
            )
            after_restart = wait_for(
                "a record after the restart",
                lambda: [r for r in records(kubectl) if r["spec"]["sequence"] > head["sequence"]],
                timeout=30,
            )[0]["spec"]
            assert after_restart["sequence"] == head["sequence"] + 1
            assert after_restart["previousHash"] == head["hash"]
            night = records(kubectl)[-1]["spec"]["sequence"]
            _feed(kubectl, "frankfurt", carbon=520, renewable=0.0, source="solar-feed")
            rebalanced = wait_for(
                "a Rebalanced record after nightfall",
                lambda: next(
                    (
                        r
                        for r in records(kubectl, "records-rebalance")
                        if r["spec"]["reason"] == "Rebalanced" and r["spec"]["sequence"] > night
                    ),
                    None,
                ),
                timeout=60,
            )
        finally:
            _feed(kubectl, "frankfurt", carbon=380, renewable=0.35, source="spec")
        before, after = cells(rebalanced, "before"), cells(rebalanced, "after")
        assert before == {"frankfurt": 3}
        # one step of at most disruptionBudget (2) replicas towards oslo
        assert after.get("oslo", 0) in (1, 2) and sum(after.values()) == 3
        assert rebalanced["spec"]["cost"]["total"] < rebalanced["spec"]["cost"]["previousTotal"]
        assert rebalanced["spec"]["fleetPlan"]["cost"] > 0  # the rebalancer's plan and gap

        # the chain verifies, across the restart
        out = ctl(fleet, "audit", "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "OK: every record's hash, link and sequence verifies" in out.stdout
        log = ctl(fleet, "audit", "log", "-n", NS, "records-failover")
        assert log.returncode == 0 and "Failover" in log.stdout and "reykjavik=4" in log.stdout

        # a plain edit is refused by the apiserver: records are written once
        victim = failover["metadata"]["name"]
        edit = kubectl(
            "patch",
            "placementrecord",
            victim,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"after": [{"module": "dallas", "region": "", "replicas": 4}]}}),
            check=False,
        )
        assert edit.returncode != 0 and "PlacementRecord spec is immutable" in edit.stderr

        # someone with admin or etcd access deletes it and writes it again with other content
        forged = _recreate(kubectl, failover, rehash=False)
        out = ctl(fleet, "audit", "verify")
        assert out.returncode == 1, out.stdout
        assert f"BROKEN at {victim} (sequence {forged['spec']['sequence']})" in out.stdout
        assert "content does not match its hash" in out.stdout
        # ... even when they recompute its hash: the next record's link names it
        _recreate(kubectl, failover, rehash=True)
        out = ctl(fleet, "audit", "verify")
        assert out.returncode == 1, out.stdout
        assert f"BROKEN at {victim}" in out.stdout and "replaced or edited" in out.stdout
    finally:
        delete(kubectl, "records-failover")
        delete(kubectl, "records-rebalance")


def _recreate(kubectl: Any, record: dict[str, Any], *, rehash: bool) -> dict[str, Any]:
    forged = {
        "apiVersion": record["apiVersion"],
        "kind": record["kind"],
        "metadata": {"name": record["metadata"]["name"], "labels": record["metadata"]["labels"]},
        "spec": copy.deepcopy(record["spec"]),
    }
    forged["spec"]["after"] = [{"module": "dallas", "region": "", "replicas": 4}]
    if rehash:
        forged["spec"]["hash"] = record_hash(forged["spec"])
    kubectl("delete", "placementrecord", record["metadata"]["name"])
    kubectl("create", "-f", "-", input=json.dumps(forged))
    return forged


def _feed(kubectl: Any, module: str, carbon: float, renewable: float, source: str) -> None:
    energy = {
        "carbonIntensity": carbon,
        "renewableShare": renewable,
        "source": source,
        "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    kubectl(
        "patch",
        "afm",
        module,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"energy": energy}}),
    )


# ------------------------------------------------------------------------ compliance evidence
def _report(kubectl: Any, namespace: str, name: str) -> dict[str, Any] | None:
    proc = kubectl(
        "get",
        "reports.openreports.io",
        "-n",
        namespace,
        f"aifactory-sovereignty-{name}",
        "-o",
        "json",
        check=False,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_a_report_for_the_eu_restricted_sample_passes_then_fails_under_an_audit_policy(
    operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    eu = sample_deployment("eu-assistant")
    apply_json(kubectl, eu)
    try:
        wait_for(
            "eu-assistant Ready",
            lambda: is_ready(get_json(kubectl, "infd", "-n", "eu-chat", "eu-assistant")),
            timeout=120,
        )
        used = placed(kubectl, "eu-chat", "eu-assistant")
        report = wait_for(
            "a Report covering every module used",
            lambda: (
                (r := _report(kubectl, "eu-chat", "eu-assistant"))
                and {x["properties"]["module"] for x in r["results"]} == set(used)
                and r
            ),
            timeout=30,
        )
        # accepted by the apiserver against the OpenReports CRD (the operator applied it)
        assert report["apiVersion"] == "openreports.io/v1alpha1" and report["kind"] == "Report"
        assert report["scope"]["kind"] == "InferenceDeployment"
        assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 0
        rules = {(x["policy"], x["rule"]) for x in report["results"]}
        assert rules == {
            ("eu-restricted-data", "allowedJurisdictions"),
            ("eu-restricted-data", "requiredCertifications"),
            ("eu-restricted-data", "dataResidency"),
        }
        assert all(x["result"] == "pass" for x in report["results"])
        oslo = next(x for x in report["results"] if x["properties"]["module"] == "oslo")
        assert (
            oslo["properties"]["country"] == "NO" and "EEA" in oslo["properties"]["jurisdictions"]
        )

        # the policy only audits now; then oslo (serving eu-north) is re-registered in Switzerland
        assert "oslo" in used
        kubectl(
            "patch",
            "sovpol",
            "eu-restricted-data",
            "--type=merge",
            "-p",
            '{"spec":{"enforcement":"Audit"}}',
        )
        try:
            kubectl(
                "patch",
                "afm",
                "oslo",
                "--type=merge",
                "-p",
                '{"spec":{"location":{"country":"CH","region":"CH-ZH"}}}',
            )

            def failing() -> dict[str, Any] | None:
                r = _report(kubectl, "eu-chat", "eu-assistant")
                return r if r and r["summary"]["fail"] > 0 else None

            report = wait_for("the Report turns to fail", failing, timeout=30)
            fails = {
                (x["rule"], x["properties"]["module"])
                for x in report["results"]
                if x["result"] == "fail"
            }
            assert ("allowedJurisdictions", "oslo") in fails
            assert ("dataResidency", "oslo") in fails  # eu-north (SE) served from CH
            bad = next(
                x
                for x in report["results"]
                if x["rule"] == "allowedJurisdictions" and x["result"] == "fail"
            )
            assert bad["properties"]["country"] == "CH"
            assert bad["properties"]["enforcement"] == "Audit"
            assert "outside allowed jurisdictions EU,EEA" in bad["message"]
            # Audit: nothing moved
            assert placed(kubectl, "eu-chat", "eu-assistant") == used
            out = ctl(fleet, "audit", "report")
            assert out.returncode == 0, out.stderr
            assert "restricted" in out.stdout and "fail: eu-chat/eu-assistant" in out.stdout
        finally:
            kubectl(
                "patch",
                "afm",
                "oslo",
                "--type=merge",
                "-p",
                '{"spec":{"location":{"country":"NO","region":"NO-03"}}}',
            )
            wait_for(
                "the Report passes again",
                lambda: (
                    (r := _report(kubectl, "eu-chat", "eu-assistant")) and r["summary"]["fail"] == 0
                ),
                timeout=30,
            )
            kubectl(
                "patch",
                "sovpol",
                "eu-restricted-data",
                "--type=merge",
                "-p",
                '{"spec":{"enforcement":"Enforce"}}',
            )
    finally:
        kubectl(
            "delete",
            "infd",
            "-n",
            "eu-chat",
            "eu-assistant",
            "--timeout=120s",
            check=False,
            timeout=150,
        )
    wait_for(
        "the Report garbage-collected with its deployment",
        lambda: _report(kubectl, "eu-chat", "eu-assistant") is None,
        timeout=60,
    )


def test_a_deployment_no_policy_binds_any_more_loses_its_report_and_keeps_serving(
    operator: OperatorProcess, kubectl: Any, namespace: str
) -> None:
    name = "confidential-then-public"
    spec = {
        "replicas": {"fixed": 1},
        "demand": {"regions": [region("de-central", 50)]},
        "throughputPerReplica": 100,
        # bound by the sample confidential-no-five-eyes (every namespace, Audit)
        "dataClassification": "confidential",
    }
    apply_json(kubectl, infd_manifest(name, namespace, spec))
    try:
        report = wait_for(
            "a Report for the confidential deployment",
            lambda: _report(kubectl, namespace, name),
            timeout=60,
        )
        assert {x["policy"] for x in report["results"]} == {"confidential-no-five-eyes"}
        kubectl(
            "patch",
            "infd",
            "-n",
            namespace,
            name,
            "--type=merge",
            "-p",
            '{"spec":{"dataClassification":"public"}}',
        )
        wait_for(
            "its Report removed once nothing binds it",
            lambda: _report(kubectl, namespace, name) is None,
            timeout=60,
        )
        obj = get_json(kubectl, "infd", "-n", namespace, name)
        assert obj["metadata"].get("deletionTimestamp") is None
        assert sum(placed(kubectl, namespace, name).values()) == 1
    finally:
        delete(kubectl, name)


# ------------------------------------------------------------------------ reliability
def test_two_outages_are_counted_and_min_reliability_keeps_new_replicas_away(
    namespace: str, operator: OperatorProcess, kubectl: Any, fleet: Fleet
) -> None:
    def reliability() -> dict[str, Any]:
        return dict(get_json(kubectl, "afm", "dallas").get("status", {}).get("reliability") or {})

    wait_for("dallas Ready", lambda: module_ready(kubectl, "dallas") == "True", timeout=60)
    wait_for("dallas has a reliability record", lambda: reliability().get("since"), timeout=30)
    before = int(reliability().get("outages") or 0)
    for i in (1, 2):
        fleet.stop("dallas")
        try:
            wait_for(
                f"outage {i}: dallas NotReady",
                lambda: module_ready(kubectl, "dallas") == "False",
                timeout=40,
            )
            time.sleep(2)
        finally:
            fleet.start("dallas")
        wait_for(
            f"outage {i}: dallas Ready",
            lambda: module_ready(kubectl, "dallas") == "True",
            timeout=60,
        )
    rel = wait_for(
        "two more outages, both ended",
        lambda: (
            (r := reliability()).get("outages", 0) >= before + 2 and not r.get("outageSince") and r
        ),
        timeout=30,
    )
    ended = [o for o in rel["recentOutages"] if o.get("end")][-2:]
    assert len(ended) == 2 and all(o["durationSeconds"] > 0 for o in ended), rel
    assert rel["longestOutageSeconds"] >= max(o["durationSeconds"] for o in ended)
    assert rel["outageSeconds"] >= sum(o["durationSeconds"] for o in ended) - 1
    assert 0 < rel["readyFraction"] < 1
    assert rel["heartbeatLatencyMs"] >= 0
    text = metrics_text(operator)
    assert metric(text, "aifactory_module_outages", module="dallas") == rel["outages"]
    fraction = metric(text, "aifactory_module_ready_fraction", module="dallas")
    assert fraction is not None and fraction < 1
    assert (metric(text, "aifactory_module_longest_outage_seconds", module="dallas") or 0) > 0
    out = ctl(fleet, "fleet", "-o", "wide")
    line = next(x for x in out.stdout.splitlines() if x.startswith("dallas"))
    assert "%" in line and "100%" not in line, line

    # dallas is the only module for us-east within 40 ms: without minReliability it takes the
    # replicas; with it, they go unplaced rather than to the flaky module
    us_east = {
        "name": "us-east",
        "country": "US",
        "latitude": 39.04,
        "longitude": -77.49,
        "requestsPerSecond": 200,
    }
    spec = elastic_spec(us_east, min_replicas=1, max_latency_ms=60)
    spec["minReliability"] = 0.9999
    name = "reliable-only"
    apply_json(kubectl, infd_manifest(name, NS, spec))
    try:
        obj = wait_for(
            "reliable-only decided",
            lambda: (
                (o := get_json(kubectl, "infd", "-n", NS, name))
                .get("status", {})
                .get("observedGeneration")
                and o
            ),
            timeout=60,
        )
        assert "dallas" not in placed(kubectl, NS, name)
        explanation = obj["status"].get("explanation") or {}
        assert "reliability below 0.9999" in explanation.get("dallas", ""), explanation
    finally:
        delete(kubectl, name)


# ------------------------------------------------------------------------ measured SLO
@pytest.fixture()
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"the prometheus binary is not on PATH; {INSTALL_HINT}", pytrace=False)
    with Exporter() as exporter:
        proc, url = start_prometheus(binary, tmp_path, exporter)
        prom = Prometheus(url, exporter)
        try:

            def target_up() -> bool:
                assert proc.poll() is None, f"prometheus exited:\n{log_tail(tmp_path)}"
                try:
                    result = prom.api(f'up{{job="{JOB}"}}')["data"]["result"]
                except OSError:
                    return False
                return bool(result) and result[0]["value"][1] == "1"

            wait_for("prometheus scraping the exporter", target_up, timeout=60)
            yield prom
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_a_region_measured_above_its_slo_on_one_module_moves_off_it_then_clears(
    namespace: str, operator: OperatorProcess, kubectl: Any, fleet: Fleet, prometheus: Prometheus
) -> None:
    name = "slo-probe"
    spec = elastic_spec(region("eu-west", 200), min_replicas=1, max_latency_ms=40)
    spec["slo"]["measured"] = {
        "prometheus": {
            "url": prometheus.url,
            "query": 'max by (region, module) (demand_rps{kind="p95"})',
            "unit": "Milliseconds",
        }
    }
    recorder = ConditionRecorder(fleet, NS, name).__enter__()
    try:
        apply_json(kubectl, infd_manifest(name, NS, spec))
        wait_for(
            "slo-probe Ready",
            lambda: is_ready(get_json(kubectl, "infd", "-n", NS, name)),
            timeout=90,
        )
        first = placed(kubectl, NS, name)
        module = max(first, key=lambda m: first[m])
        labels = f'kind="p95",region="eu-west",module="{module}"'
        for m in first:  # every serving module measured within the SLO first
            prometheus.exporter.set_gauge(f'kind="p95",region="eu-west",module="{m}"', 12)
        wait_for(
            "SLOBreached False (within the SLO)",
            lambda: recorder.has("SLOBreached", "WithinSLO"),
            timeout=30,
        )
        prometheus.exporter.set_gauge(labels, 120)
        breached = wait_for(
            "SLOBreached True naming the region and the module",
            lambda: recorder.has("SLOBreached", "MeasuredLatencyAboveSLO"),
            timeout=40,
        )
        assert breached[1] == "True" and "eu-west" in breached[3] and module in breached[3]
        wait_for(
            f"{module} no longer serves eu-west, and the rest is Ready",
            lambda: (
                module not in placed(kubectl, NS, name)
                and is_ready(get_json(kubectl, "infd", "-n", NS, name))
            ),
            timeout=60,
        )
        events = events_of(kubectl, NS, name, "SLOBreached")
        assert events and module in events[0]["message"] and "eu-west" in events[0]["message"]
        text = metrics_text(operator)
        assert (
            metric(
                text,
                "aifactory_slo_breached",
                deployment=f"{NS}/{name}",
                region="eu-west",
                module=module,
            )
            == 1
        )
        # the module no longer serves eu-west: its series ends; the breach clears
        prometheus.exporter.clear_gauge(labels)
        wait_for(
            "SLOBreached False again",
            lambda: (
                (c := condition(get_json(kubectl, "infd", "-n", NS, name), "SLOBreached"))
                and c["status"] == "False"
            ),
            timeout=40,
        )
        cleared = condition(get_json(kubectl, "infd", "-n", NS, name), "SLOBreached")
        assert cleared is not None and f"eu-west on {module}" in cleared["message"]  # held out
        assert module not in placed(kubectl, NS, name)  # nothing moves back by itself
        assert events_of(kubectl, NS, name, "SLORestored")

        def breach_ended() -> dict[str, Any] | None:
            rel = get_json(kubectl, "afm", module)["status"].get("reliability") or {}
            return next(
                (
                    b
                    for b in rel.get("recentSloBreaches") or []
                    if b["deployment"] == f"{NS}/{name}" and b.get("end")
                ),
                None,
            )

        breach = wait_for(f"the breach in {module}'s reliability record", breach_ended, 20)
        assert breach["region"] == "eu-west" and breach["latencyMs"] == 120
        slo_records = [r for r in records(kubectl, name) if r["spec"]["reason"] == "SLOBreach"]
        assert slo_records and module in cells(slo_records[0], "before")
    finally:
        recorder.__exit__()
        delete(kubectl, name)


# ------------------------------------------------------------------------ kubectl plugin
def test_kubectl_finds_and_runs_the_plugin(operator: OperatorProcess, fleet: Fleet) -> None:
    """The pinned kubectl runs `kubectl-aifactory` from PATH, as any kubectl plugin."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "KUBECONFIG": str(fleet.kubeconfig("hub")),
    }
    kubectl = str(fleet.binary("kubectl"))
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True, env=env)
    assert "kubectl-aifactory" in listed.stdout, listed.stdout + listed.stderr
    out = subprocess.run(
        [kubectl, "aifactory", "fleet"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split()[:2] == ["MODULE", "COUNTRY"]
    assert "UPTIME" in out.stdout.splitlines()[0]
    out = subprocess.run(
        [kubectl, "aifactory", "audit", "log", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0 and isinstance(json.loads(out.stdout), list), out.stderr
