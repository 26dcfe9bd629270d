"""The chart renders, lints, and holds what a platform team expects (no cluster needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hack.chart import CHART_MANAGED_SETTINGS, config_schema
from tests.chart.helpers import ALL_FEATURES, CHART, MONITORING_API, REPO, by_kind, helm, render

from aifactory.api.crds import CHART_REGENERATE_COMMAND, render_crds
from aifactory.controllers.admission import webhook_configuration
from aifactory.settings import OperatorSettings

RECOMMENDED = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


@pytest.mark.parametrize("extra", [[], ALL_FEATURES], ids=["defaults", "all-features"])
def test_helm_lint_passes(extra: list[str]) -> None:
    out = helm("lint", "--strict", str(CHART), *extra)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_defaults_render_the_core_objects() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Service",
            "Secret",
            "Deployment",
            "ValidatingWebhookConfiguration",
        ]
    )
    for d in docs:
        labels = d["metadata"].get("labels", {})
        assert set(RECOMMENDED) <= set(labels), (d["kind"], labels)


def test_all_features_render_every_optional_object() -> None:
    docs = render(*ALL_FEATURES, *MONITORING_API)
    for kind in ("ServiceMonitor", "PodDisruptionBudget", "Certificate", "Issuer"):
        assert len(by_kind(docs, kind)) == 1, kind
    dashboard = next(
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    )
    panels = json.loads(dashboard["data"]["aifactory-fleet.json"])["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "aifactory_placed_replicas",
        "aifactory_unplaced_replicas",
        "aifactory_module_ready",
        "aifactory_reconcile_errors_total",
    ):
        assert metric in exprs
    # cert-manager: no Helm-generated Secret, the CA is injected into the webhook configuration
    assert not by_kind(docs, "Secret")
    vwc = by_kind(docs, "ValidatingWebhookConfiguration")[0]
    assert "cert-manager.io/inject-ca-from" in vwc["metadata"]["annotations"]
    roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-member-secrets")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["aifactory-system", "batch"]


def test_service_monitor_needs_the_monitoring_api() -> None:
    docs = render("--set", "metrics.serviceMonitor.enabled=true")
    assert not by_kind(docs, "ServiceMonitor")


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def test_pod_meets_restricted_pod_security() -> None:
    docs = render()
    pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = _container(docs)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert ports["healthz"] == int(env["AIFACTORY_LIVENESS_PORT"])
    assert ports["metrics"] == int(env["AIFACTORY_METRICS_PORT"])
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


@pytest.mark.parametrize("metrics", ["true", "false"])
def test_readiness_probe_asks_whether_the_caches_are_warm(metrics: str) -> None:
    """/readyz is served on the metrics port even when scraping is off (no metrics Service)."""
    docs = render("--set", f"metrics.enabled={metrics}")
    c = _container(docs)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert ports["metrics"] == int(env["AIFACTORY_METRICS_PORT"]) > 0
    services = [s["metadata"]["name"] for s in by_kind(docs, "Service")]
    assert ("aifactory-aifactory-operator-metrics" in services) == (metrics == "true")


@pytest.mark.parametrize("grace", [None, 45, 42.5])
def test_pods_get_longer_to_stop_than_the_operator_takes(grace: float | None) -> None:
    args = ["--set-json", f"config.shutdown_grace_seconds={grace}"] if grace else []
    pod = by_kind(render(*args), "Deployment")[0]["spec"]["template"]["spec"]
    takes = grace or OperatorSettings().shutdown_grace_seconds
    assert pod["terminationGracePeriodSeconds"] >= takes + 5


def test_chart_mode_mounts_the_certificate_and_leaves_the_webhook_config_to_helm() -> None:
    docs = render()
    env = {e["name"]: e.get("value") for e in _container(docs)["env"]}
    assert env["AIFACTORY_WEBHOOK_MANAGED"] == "false"
    assert env["AIFACTORY_WEBHOOK_CERT_FILE"] == "/etc/aifactory/webhook/tls.crt"
    secret = by_kind(docs, "Secret")[0]
    vwc = by_kind(docs, "ValidatingWebhookConfiguration")[0]
    for hook in vwc["webhooks"]:
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    volumes = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": secret["metadata"]["name"]} in [v.get("secret") for v in volumes]
    # operator mode: no rendered configuration; the operator gets the RBAC to manage its own
    docs = render("--set", "webhook.mode=operator")
    assert not by_kind(docs, "ValidatingWebhookConfiguration")
    assert ("admissionregistration.k8s.io", "validatingwebhookconfigurations") in {
        (g, r) for g, r, *_ in _rules(docs)
    }


def _env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(docs)["env"]}


def test_two_replicas_elect_a_leader_with_a_lease() -> None:
    docs = render("--set", "replicaCount=2")
    env = _env(docs)
    assert env["AIFACTORY_LEADER_ELECTION"]["value"] == "true"
    assert env["AIFACTORY_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    lease = env["AIFACTORY_LEASE_NAME"]["value"]
    assert lease == "aifactory-aifactory-operator"
    assert [env[f"AIFACTORY_LEASE_{k}"]["value"] for k in ("DURATION", "RENEW_DEADLINE")] == [
        "15",
        "10",
    ]
    assert env["AIFACTORY_LEASE_RETRY_PERIOD"]["value"] == "2"
    # what the chart passes is what the operator accepts
    settings = OperatorSettings.model_validate(
        {
            k.removeprefix("AIFACTORY_").lower(): e["value"]
            for k, e in env.items()
            if k.startswith(("AIFACTORY_LEASE", "AIFACTORY_LEADER"))
        }
        | {"pod_name": "x"}
    )
    assert settings.leader_election and settings.lease_duration == 15
    # the Lease is the only thing it may write in its namespace, and only that one by name
    role = next(
        r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")
    )
    assert role["metadata"]["namespace"] == "aifactory-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "patch"],
        },
    ]
    assert len(by_kind(docs, "PodDisruptionBudget")) == 1
    # one replica elects too by default (a rolling update hands over strictly); null = only
    # with several replicas; forced off with many replicas is respected
    one = render()
    assert _env(one)["AIFACTORY_LEADER_ELECTION"]["value"] == "true"
    auto = render("--set", "highAvailability.leaderElection=null")
    assert _env(auto)["AIFACTORY_LEADER_ELECTION"]["value"] == "false"
    assert "AIFACTORY_LEASE_NAME" not in _env(auto)
    assert not [r for r in by_kind(auto, "Role") if "leader" in r["metadata"]["name"]]
    off = _env(render("--set", "replicaCount=3", "--set", "highAvailability.leaderElection=false"))
    assert off["AIFACTORY_LEADER_ELECTION"]["value"] == "false"


def test_inconsistent_lease_timings_fail_at_install() -> None:
    bad = helm(
        "template",
        "x",
        str(CHART),
        "--set",
        "replicaCount=2",
        "--set",
        "highAvailability.renewDeadlineSeconds=20",
        check=False,
    )
    assert bad.returncode != 0
    assert "retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds" in bad.stderr


@pytest.mark.parametrize(
    "policy,timeout", [("Fail", None), ("Ignore", 12)], ids=["defaults", "ignore-12s"]
)
def test_webhook_configuration_is_the_operators_own(policy: str, timeout: int | None) -> None:
    """The chart renders exactly what `webhook_configuration` builds (the operator applies that
    itself in webhook.mode=operator), pointed at the webhook Service."""
    args = ["--set", f"webhook.failurePolicy={policy}"]
    if timeout is not None:
        args += ["--set", f"webhook.timeoutSeconds={timeout}"]
    docs = render(*args)
    vwc = by_kind(docs, "ValidatingWebhookConfiguration")[0]
    secret = by_kind(docs, "Secret")[0]
    service = next(
        s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-webhook")
    )
    expected = webhook_configuration(
        vwc["metadata"]["name"],
        {
            "service": {
                "name": service["metadata"]["name"],
                "namespace": "aifactory-system",
                "port": service["spec"]["ports"][0]["port"],
            },
            "caBundle": secret["data"]["ca.crt"],
        },
        timeout_seconds=timeout or OperatorSettings().webhook_timeout_seconds,
        failure_policy=policy,
    )
    assert {k: vwc[k] for k in ("apiVersion", "kind", "webhooks")} == {
        k: expected[k] for k in ("apiVersion", "kind", "webhooks")
    }
    # the operator serves the same handlers with the same settings
    env = {k: e.get("value") for k, e in _env(docs).items()}
    assert env["AIFACTORY_WEBHOOK_FAILURE_POLICY"] == policy
    assert int(env["AIFACTORY_WEBHOOK_TIMEOUT_SECONDS"]) == (timeout or 5)
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"


def test_webhook_defaults_follow_the_operator_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["webhook"]
    defaults = OperatorSettings()
    assert values["failurePolicy"] == defaults.webhook_failure_policy
    assert values["timeoutSeconds"] == defaults.webhook_timeout_seconds


def test_a_changed_setting_changes_the_pod_template() -> None:
    def checksum(*args: str) -> str:
        deployment = by_kind(render(*args), "Deployment")[0]
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() != checksum("--set", "config.heartbeat_interval=5")


def _rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(apiGroup, resource, verb, resourceName or "") of every ClusterRole rule."""
    return {
        (g, r, v, n)
        for rule in by_kind(docs, "ClusterRole")[0]["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
        for n in rule.get("resourceNames", [""])
    }


def test_least_privilege_rbac() -> None:
    docs = render("--set", "replicaCount=2")
    rules = by_kind(docs, "ClusterRole")[0]["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], "Secrets only through namespaced Roles"
        assert not {"update", "deletecollection", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        ), rule
    granted = _rules(docs)
    # no kopf peering any more; leases only through the namespaced Role
    assert not {g for g, *_ in granted} & {"kopf.dev", "coordination.k8s.io"}
    # reads of the custom resources are watches: nothing gets them one by one
    assert not {(g, r) for g, r, v, _ in granted if g == "aifactory.dev" and v == "get"}
    assert ("aifactory.dev", "inferencedeployments", "patch", "") in granted  # finalizer
    assert ("aifactory.dev", "aifactorymodules", "patch", "") not in granted
    assert ("", "events", "patch", "") in granted  # repeated Events are counted
    assert ("scheduling.k8s.io", "priorityclasses", "watch", "") in granted
    assert ("apps", "deployments/scale", "patch", "") in granted
    # decision records are written once and deleted by retention, never changed
    records = {v for g, r, v, _ in granted if r == "placementrecords"}
    assert records == {"list", "create", "delete"}
    reports = {v for g, r, v, _ in granted if (g, r) == ("openreports.io", "reports")}
    assert reports == {"list", "create", "patch", "delete"}
    assert not {r for _, r, *_ in granted} & {
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    }
    roles = {r["metadata"]["name"]: r for r in by_kind(docs, "Role")}
    secrets = roles["aifactory-aifactory-operator-member-secrets"]
    assert secrets["metadata"]["namespace"] == "aifactory-system"
    assert secrets["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert "leases" in str(roles["aifactory-aifactory-operator-leader-election"]["rules"])
    remote_only = by_kind(render("--set", "rbac.nodePoolModules=false"), "ClusterRole")[0]
    resources = {r for rule in remote_only["rules"] for r in rule["resources"]}
    assert not {"deployments", "services", "nodes", "pods"} & resources
    # webhook.mode=operator: its own configuration, by name, and nothing else of that kind
    managed = _rules(render("--set", "webhook.mode=operator")) - granted
    assert managed == {
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            v,
            "validating.aifactory.dev",
        )
        for v in ("create", "patch")
    }


def test_member_rules_are_the_node_pool_rules_of_the_hub() -> None:
    """docs/member-rbac.yaml grants in a member exactly what the chart grants in the hub for
    node-pool modules: the operator makes the same calls in both."""
    docs = [d for d in yaml.safe_load_all((REPO / "docs" / "member-rbac.yaml").read_text()) if d]
    member = {
        (g, r, v, "")
        for rule in by_kind(docs, "ClusterRole")[0]["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    node_pools = _rules(render()) - _rules(render("--set", "rbac.nodePoolModules=false"))
    assert member == node_pools


def test_values_schema_rejects_typos_and_tracks_the_settings() -> None:
    bad = helm("template", "x", str(CHART), "--set", "replicaCont=2", check=False)
    assert bad.returncode != 0 and "replicaCont" in bad.stderr
    bad = helm("template", "x", str(CHART), "--set", "config.heartbeat_intervall=2", check=False)
    assert bad.returncode != 0
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["config"] == config_schema(), "regenerate: python -m hack.chart"
    config = set(schema["properties"]["config"]["properties"])
    assert config == set(OperatorSettings.model_fields) - CHART_MANAGED_SETTINGS


def test_chart_crds_are_generated_from_the_models_and_match_crds_dir() -> None:
    rendered = render_crds()
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert chart == rendered, (
        f"regenerate with: PYTHONPATH=operator .venv/bin/{CHART_REGENERATE_COMMAND}"
    )
    for name, text in chart.items():
        assert (REPO / "crds" / name).read_text() == text, name
    assert all(name.startswith("aifactory.dev_") for name in chart)  # no kopf peering CRD
