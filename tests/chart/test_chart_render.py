"""The chart renders, lints, and holds what a platform team expects (no cluster needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hack.chart import CHART_MANAGED_SETTINGS, config_schema
from tests.chart.helpers import ALL_FEATURES, CHART, MONITORING_API, REPO, by_kind, helm, render

from aifactory.api.crds import CHART_REGENERATE_COMMAND, PEERING_FILENAME, render_crds
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
            "Service",
            "Service",
            "Secret",
            "Deployment",
            "ClusterKopfPeering",
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
    roles = by_kind(docs, "Role")
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


def test_chart_mode_mounts_the_certificate_and_leaves_the_webhook_config_to_helm() -> None:
    docs = render()
    env = {e["name"]: e.get("value") for e in _container(docs)["env"]}
    assert env["AIFACTORY_WEBHOOK_MANAGED"] == "false"
    assert env["AIFACTORY_WEBHOOK_CERT_FILE"] == "/etc/aifactory/webhook/tls.crt"
    secret = by_kind(docs, "Secret")[0]
    vwc = by_kind(docs, "ValidatingWebhookConfiguration")[0]
    hook = vwc["webhooks"][0]
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert hook["clientConfig"]["service"]["path"] == "/sovereignty"  # kopf handler id
    volumes = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": secret["metadata"]["name"]} in [v.get("secret") for v in volumes]
    # operator mode: no rendered configuration; the operator gets the RBAC to manage its own
    docs = render("--set", "webhook.mode=operator")
    assert not by_kind(docs, "ValidatingWebhookConfiguration")
    rules = by_kind(docs, "ClusterRole")[0]["rules"]
    assert any("validatingwebhookconfigurations" in r["resources"] for r in rules)


def test_replicas_get_distinct_peering_priorities_from_their_pod_names() -> None:
    env = {e["name"]: e for e in _container(render("--set", "replicaCount=2"))["env"]}
    assert env["AIFACTORY_STANDALONE"]["value"] == "false"
    assert env["AIFACTORY_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    a = OperatorSettings(standalone=False, pod_name="aifactory-operator-7d9f-abcde")
    b = OperatorSettings(standalone=False, pod_name="aifactory-operator-7d9f-fghij")
    assert a.effective_peering_priority != b.effective_peering_priority
    assert (
        a.effective_peering_priority
        == OperatorSettings(pod_name="aifactory-operator-7d9f-abcde").effective_peering_priority
    )
    assert OperatorSettings(peering_priority=7, pod_name="x").effective_peering_priority == 7


def test_a_changed_setting_changes_the_pod_template() -> None:
    def checksum(*args: str) -> str:
        deployment = by_kind(render(*args), "Deployment")[0]
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() != checksum("--set", "config.heartbeat_interval=5")


def test_least_privilege_rbac() -> None:
    docs = render()
    rules = by_kind(docs, "ClusterRole")[0]["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], "Secrets only through namespaced Roles"
        assert not {"update", "deletecollection", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        ), rule
    role = by_kind(docs, "Role")[0]
    assert role["metadata"]["namespace"] == "aifactory-system"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    remote_only = by_kind(render("--set", "rbac.nodePoolModules=false"), "ClusterRole")[0]
    resources = {r for rule in remote_only["rules"] for r in rule["resources"]}
    assert not {"deployments", "services", "nodes", "pods"} & resources


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
    rendered = render_crds(peering=True)
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert chart == rendered, (
        f"regenerate with: PYTHONPATH=operator .venv/bin/{CHART_REGENERATE_COMMAND}"
    )
    for name, text in chart.items():
        if name != PEERING_FILENAME:
            assert (REPO / "crds" / name).read_text() == text, name
    peering = yaml.safe_load(chart[PEERING_FILENAME])
    assert peering["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"
