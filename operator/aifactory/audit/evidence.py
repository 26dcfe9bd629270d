"""Compliance evidence: an OpenReports `Report` per InferenceDeployment bound by a
SovereigntyPolicy. Pure.

One result per rule a bound policy sets, per module the deployment runs on (and, for data
residency, per demand region that module serves): `pass`, `fail`, or `warn` when the rule holds
only through a jurisdiction tag the module declares in `location.jurisdictions` (the operator
takes the module's word for it; nothing about its country implies it). A module breaking a rule
of an Audit policy is `fail` too: the report says whether the rule holds; the `enforcement`
property says whether the operator would have prevented it. Each result carries the facts it
was decided on (country, jurisdiction tags, operator country, certifications, air gap, region).

The rules mirror the placement engine's sovereignty and residency plugins
(`placement/filters/`); a test checks they agree on every sample module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.api.jurisdictions import GROUPS, expand, groups_of, tags_of

API_VERSION = "openreports.io/v1alpha1"
KIND = "Report"
PLURAL = "reports"
SOURCE = "aifactory-operator"
MANAGED_BY = "app.kubernetes.io/managed-by"
CATEGORY = "Data sovereignty"
PASS, FAIL, WARN, ERROR, SKIP = "pass", "fail", "warn", "error", "skip"
RESULTS = (PASS, FAIL, WARN, ERROR, SKIP)
NAME_PREFIX = "aifactory-sovereignty-"


def report_name(deployment: str) -> str:
    """`aifactory-sovereignty-<deployment>`, shortened with a digest past 253 characters."""
    name = NAME_PREFIX + deployment
    if len(name) <= 253:
        return name
    tag = hashlib.sha256(deployment.encode()).hexdigest()[:10]
    return f"{name[: 253 - 11]}-{tag}"


def report_path(namespace: str, name: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


@dataclass(frozen=True, slots=True)
class Result:
    policy: str
    rule: str
    result: str
    message: str
    module: str | None
    properties: Mapping[str, str]
    severity: str

    def key(self) -> tuple[str, str, str, str]:
        return (self.policy, self.rule, self.module or "", self.properties.get("region", ""))


def _facts(m: AIFactoryModule) -> dict[str, str]:
    spec = m.spec
    return {
        "module": m.name,
        "country": spec.location.country,
        "jurisdictions": ",".join(
            sorted(tags_of(spec.location.country, spec.location.jurisdictions))
        ),
        "declaredJurisdictions": ",".join(sorted(spec.location.jurisdictions)),
        "operatorCountry": spec.security.operator_country or "",
        "certifications": ",".join(sorted(spec.security.certifications)),
        "airGapped": "true" if spec.security.air_gapped else "false",
    }


def _implied(country: str) -> frozenset[str]:
    """Tags a country carries by itself: the country and the groups it belongs to."""
    return frozenset({country}) | groups_of(country)


def module_results(
    policy: SovereigntyPolicy, m: AIFactoryModule, regions: Mapping[str, str]
) -> list[tuple[str, str, str, dict[str, str]]]:
    """(rule, result, message, extra properties) for every rule `policy` sets, on module `m`
    serving `regions` (region name -> its users' country)."""
    spec = policy.spec
    loc = m.spec.location
    sec = m.spec.security
    country = loc.country
    tags = tags_of(country, loc.jurisdictions)
    implied = _implied(country)
    out: list[tuple[str, str, str, dict[str, str]]] = []
    label = f"{m.name} ({country})"
    if spec.allowed_jurisdictions:
        allowed = list(spec.allowed_jurisdictions)
        hit = sorted(set(allowed) & tags)
        by_country = sorted(set(allowed) & implied)
        if by_country:
            out.append(("allowedJurisdictions", PASS, f"{label} is in {','.join(by_country)}", {}))
        elif hit:
            out.append(
                (
                    "allowedJurisdictions",
                    WARN,
                    f"{label} is in {','.join(hit)} only by its declared location.jurisdictions "
                    f"tags, not by its country",
                    {},
                )
            )
        else:
            out.append(
                (
                    "allowedJurisdictions",
                    FAIL,
                    f"{label} is outside allowed jurisdictions {','.join(allowed)}",
                    {},
                )
            )
    if spec.denied_countries:
        denied = expand(spec.denied_countries)
        bad = country in denied
        out.append(
            (
                "deniedCountries",
                FAIL if bad else PASS,
                f"{label} is {'in' if bad else 'not in'} denied countries "
                f"{','.join(spec.denied_countries)}",
                {},
            )
        )
    if spec.operator_countries:
        ok = sec.operator_country is not None and sec.operator_country in expand(
            spec.operator_countries
        )
        out.append(
            (
                "operatorCountries",
                PASS if ok else FAIL,
                f"{m.name}'s operator country {sec.operator_country or 'is not declared'}"
                + (" is" if ok else " is not")
                + f" in {','.join(spec.operator_countries)}",
                {},
            )
        )
    if spec.denied_operator_countries:
        bad = sec.operator_country is not None and sec.operator_country in expand(
            spec.denied_operator_countries
        )
        out.append(
            (
                "deniedOperatorCountries",
                FAIL if bad else PASS,
                f"{m.name}'s operator country {sec.operator_country or '(not declared)'} is "
                f"{'in' if bad else 'not in'} {','.join(spec.denied_operator_countries)}",
                {},
            )
        )
    if spec.required_certifications:
        missing = sorted(set(spec.required_certifications) - set(sec.certifications))
        out.append(
            (
                "requiredCertifications",
                FAIL if missing else PASS,
                f"{m.name} lacks {','.join(missing)}"
                if missing
                else f"{m.name} holds {','.join(spec.required_certifications)}",
                {},
            )
        )
    if spec.require_air_gapped:
        out.append(
            (
                "requireAirGapped",
                PASS if sec.air_gapped else FAIL,
                f"{m.name} is {'' if sec.air_gapped else 'not '}air-gapped",
                {},
            )
        )
    if spec.data_residency.value == "SameJurisdictionAsDemand":
        if not regions:
            out.append(
                (
                    "dataResidency",
                    SKIP,
                    f"{m.name} serves no demand region: nothing to check",
                    {},
                )
            )
        for region, region_country in sorted(regions.items()):
            extra = {"region": region, "regionCountry": region_country}
            shared = sorted(
                t
                for t in spec.allowed_jurisdictions
                if t in GROUPS and region_country in GROUPS[t] and t in tags
            )
            same = region_country == country or any(t in implied for t in shared)
            if same:
                why = "the same country" if region_country == country else ",".join(shared)
                out.append(
                    (
                        "dataResidency",
                        PASS,
                        f"{region} ({region_country}) served from {label}: {why}",
                        extra,
                    )
                )
            elif shared:
                out.append(
                    (
                        "dataResidency",
                        WARN,
                        f"{region} ({region_country}) served from {label}: shares "
                        f"{','.join(shared)} only by the module's declared tags",
                        extra,
                    )
                )
            else:
                out.append(
                    (
                        "dataResidency",
                        FAIL,
                        f"{region} ({region_country}) served from {label}: no shared "
                        f"jurisdiction among {','.join(spec.allowed_jurisdictions) or 'none'}",
                        extra,
                    )
                )
    return out


def results(
    deployment: InferenceDeployment,
    placements: Sequence[tuple[str, int, Mapping[str, int]]],
    modules: Mapping[str, AIFactoryModule],
    policies: Sequence[SovereigntyPolicy],
    missing: Sequence[str] = (),
) -> list[Result]:
    """Every result of one deployment: bound `policies` x modules used x rules.

    `placements`: (module, replicas, regions served) as status has them; `missing`: policies
    the deployment names that do not exist (an `error` result each).
    """
    region_country = {r.name: r.country for r in deployment.spec.demand.regions}
    out: list[Result] = []
    for name in missing:
        out.append(
            Result(
                name,
                "exists",
                ERROR,
                f"SovereigntyPolicy {name} named in spec.sovereigntyPolicies does not exist",
                None,
                {"dataClassification": deployment.spec.data_classification.value},
                "high",
            )
        )
    for policy in sorted(policies, key=lambda p: p.name):
        enforcement = policy.spec.enforcement.value
        severity = "high" if policy.enforced else "medium"
        for module, replicas, regions in sorted(placements):
            if replicas <= 0:
                continue
            m = modules.get(module)
            if m is None:
                out.append(
                    Result(
                        policy.name,
                        "module",
                        ERROR,
                        f"module {module} is not known to the hub: its facts cannot be checked",
                        module,
                        {"module": module, "enforcement": enforcement},
                        severity,
                    )
                )
                continue
            served = {
                r: region_country[r] for r, k in regions.items() if k > 0 and r in region_country
            }
            facts = _facts(m)
            for rule, result, message, extra in module_results(policy, m, served):
                out.append(
                    Result(
                        policy.name,
                        rule,
                        result,
                        message,
                        module,
                        {
                            **facts,
                            **extra,
                            "enforcement": enforcement,
                            "replicas": str(replicas),
                            "dataClassification": deployment.spec.data_classification.value,
                        },
                        severity,
                    )
                )
    return out


def summary(items: Sequence[Result]) -> dict[str, int]:
    return {r: sum(1 for x in items if x.result == r) for r in RESULTS}


def report(
    deployment: InferenceDeployment,
    items: Sequence[Result],
    now: datetime,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Report object. A result unchanged since `previous` keeps its timestamp, so a report
    whose findings did not change is identical to the one written before (nothing to write)."""
    stamps: dict[tuple[str, ...], Any] = {}
    for old in (previous or {}).get("results") or []:
        props = old.get("properties") or {}
        key = (
            old.get("policy", ""),
            old.get("rule", ""),
            props.get("module", ""),
            props.get("region", ""),
            old.get("result", ""),
            old.get("message", ""),
        )
        stamps[key] = old.get("timestamp")
    stamp_now = {"seconds": int(now.timestamp()), "nanos": 0}
    out_results = []
    for r in items:
        key = (*r.key(), r.result, r.message)
        entry: dict[str, Any] = {
            "source": SOURCE,
            "policy": r.policy,
            "rule": r.rule,
            "result": r.result,
            "message": r.message,
            "category": CATEGORY,
            "severity": r.severity,
            "scored": True,
            "timestamp": stamps.get(key) or stamp_now,
            "properties": {k: v for k, v in r.properties.items() if v != ""},
        }
        if r.module:
            entry["resources"] = [
                {
                    "apiVersion": "aifactory.dev/v1alpha1",
                    "kind": "AIFactoryModule",
                    "name": r.module,
                }
            ]
        out_results.append(entry)
    meta = deployment.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": report_name(meta.name),
            "namespace": deployment.namespace,
            "labels": {
                MANAGED_BY: SOURCE,
                **(
                    {"aifactory.dev/inference-deployment": meta.name}
                    if len(meta.name) <= 63
                    else {}
                ),
            },
            "ownerReferences": [
                {
                    "apiVersion": "aifactory.dev/v1alpha1",
                    "kind": "InferenceDeployment",
                    "name": meta.name,
                    "uid": meta.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ]
            if meta.uid
            else [],
        },
        "scope": {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "name": meta.name,
            "namespace": deployment.namespace,
            **({"uid": meta.uid} if meta.uid else {}),
        },
        "source": SOURCE,
        "summary": summary(items),
        "results": out_results,
    }


def same_findings(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """Equal apart from result timestamps (what changes on every evaluation)."""
    if a is None:
        return False

    def strip(obj: Mapping[str, Any]) -> Any:
        return (
            obj.get("summary"),
            [{k: v for k, v in r.items() if k != "timestamp"} for r in obj.get("results") or []],
            (obj.get("metadata") or {}).get("labels"),
            obj.get("scope"),
        )

    return bool(strip(a) == strip(b))


__all__ = [
    "API_VERSION",
    "FAIL",
    "KIND",
    "PASS",
    "RESULTS",
    "WARN",
    "Result",
    "module_results",
    "report",
    "report_name",
    "report_path",
    "results",
    "same_findings",
    "summary",
]
