"""Compliance evidence: one result per rule per module (and region), the facts it used, and
agreement with the placement engine's own sovereignty and residency checks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.audit import evidence
from aifactory.placement import FleetState
from aifactory.placement.filters.residency import allowed_for
from aifactory.placement.filters.sovereignty import policy_checks
from aifactory.placement.from_api import module_view, policy_view

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


MODULES = {d["metadata"]["name"]: AIFactoryModule.from_manifest(d) for d in docs("modules.yaml")}
POLICIES = {
    d["metadata"]["name"]: SovereigntyPolicy.from_manifest(d) for d in docs("policies.yaml")
}
EU = InferenceDeployment.from_manifest(
    next(d for d in docs("deployments.yaml") if d["metadata"]["name"] == "eu-assistant")
)


def policy(**spec: Any) -> SovereigntyPolicy:
    return SovereigntyPolicy.from_manifest({"metadata": {"name": "p"}, "spec": spec})


def module_with(name: str, **location: Any) -> AIFactoryModule:
    raw = copy.deepcopy(MODULES[name].to_manifest())
    raw["spec"]["location"].update(location)
    return AIFactoryModule.from_manifest(raw)


def test_the_eu_sample_on_its_modules_passes_every_rule_with_its_facts() -> None:
    placements = [("oslo", 5, {"eu-north": 5}), ("paris", 24, {"eu-west": 9, "eu-central": 15})]
    items = evidence.results(EU, placements, MODULES, [POLICIES["eu-restricted-data"]])
    assert {r.result for r in items} == {evidence.PASS}
    # two module-level rules per module, one residency result per region served
    assert len(items) == 2 * 2 + 3
    res = next(r for r in items if r.rule == "dataResidency" and r.module == "oslo")
    assert res.properties["region"] == "eu-north" and res.properties["regionCountry"] == "SE"
    assert res.properties["country"] == "NO" and "EEA" in res.properties["jurisdictions"]
    assert res.properties["enforcement"] == "Enforce" and res.severity == "high"
    report = evidence.report(EU, items, NOW)
    assert report["summary"] == {"pass": 7, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    assert report["metadata"]["name"] == "aifactory-sovereignty-eu-assistant"
    assert report["scope"] == {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "name": "eu-assistant",
        "namespace": "eu-chat",
    }
    assert all(
        set(r["properties"].values()) <= {*r["properties"].values()} for r in report["results"]
    )
    assert all(isinstance(v, str) for r in report["results"] for v in r["properties"].values())


def test_audit_violations_fail_and_declared_tags_only_warn() -> None:
    audit = policy(
        allowedJurisdictions=["EU", "EEA"],
        dataResidency="SameJurisdictionAsDemand",
        enforcement="Audit",
    )
    swiss = {"oslo": module_with("oslo", country="CH", region="CH-ZH")}
    items = evidence.results(EU, [("oslo", 5, {"eu-north": 5})], swiss, [audit])
    assert {(r.rule, r.result) for r in items} == {
        ("allowedJurisdictions", evidence.FAIL),
        ("dataResidency", evidence.FAIL),
    }
    assert all(r.severity == "medium" and r.properties["enforcement"] == "Audit" for r in items)
    tagged = {"oslo": module_with("oslo", country="CH", region="CH-ZH", jurisdictions=["EEA"])}
    items = evidence.results(EU, [("oslo", 5, {"eu-north": 5})], tagged, [audit])
    assert {r.result for r in items} == {evidence.WARN}
    assert "declared" in items[0].message


def test_missing_policies_and_unknown_modules_are_errors() -> None:
    items = evidence.results(
        EU, [("gone", 1, {})], MODULES, [POLICIES["eu-restricted-data"]], missing=["nope"]
    )
    assert [(r.policy, r.result) for r in items] == [
        ("nope", evidence.ERROR),
        ("eu-restricted-data", evidence.ERROR),
    ]


def test_unchanged_findings_keep_their_timestamps() -> None:
    placements = [("paris", 2, {"eu-west": 2})]
    items = evidence.results(EU, placements, MODULES, [POLICIES["eu-restricted-data"]])
    first = evidence.report(EU, items, NOW)
    later = evidence.report(EU, items, NOW.replace(hour=11), first)
    assert later == first and evidence.same_findings(first, later)


def test_report_names_fit_the_apiserver() -> None:
    assert len(evidence.report_name("x" * 253)) == 253


@pytest.mark.parametrize("policy_name", ["eu-restricted-data", "confidential-no-five-eyes"])
def test_results_agree_with_the_engine_on_every_sample_module(policy_name: str) -> None:
    pol = POLICIES[policy_name]
    fleet = FleetState([module_view(m) for m in MODULES.values()])
    view = policy_view(pol)
    engine_fails = np.zeros(fleet.n, np.bool_)
    for fails, _ in policy_checks(fleet, view):
        engine_fails |= fails
    for name, m in MODULES.items():
        ours = evidence.module_results(pol, m, {})
        failed = any(r == evidence.FAIL for _, r, _, _ in ours if _ != "dataResidency")
        assert failed == bool(engine_fails[fleet.index[name]]), name
    if pol.spec.data_residency.value == "SameJurisdictionAsDemand":
        for country in ("IE", "DE", "SE", "US", "SG", "IS"):
            allowed = allowed_for(fleet, view, country)
            for name, m in MODULES.items():
                ours = evidence.module_results(pol, m, {"r": country})
                res = [r for rule, r, _, _ in ours if rule == "dataResidency"]
                assert (res == [evidence.FAIL]) == (not allowed[fleet.index[name]]), (country, name)
