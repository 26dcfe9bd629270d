"""Sovereignty: every bound Enforce policy's module rules; Audit policies only report."""

from __future__ import annotations

from typing import Any

import pytest
from tests.placement.factories import DE, IS, PL, US, module, policy, state, workload

from aifactory.placement import Code, Selector
from aifactory.placement.filters import sovereignty

ISO = frozenset({"ISO27001"})


@pytest.mark.parametrize(
    ("where", "mod", "rules", "reason"),
    [
        (DE, {}, {"allowed_jurisdictions": ("EU", "EEA")}, None),
        (
            IS,
            {},
            {"allowed_jurisdictions": ("EU",)},
            sovereignty.REASON_JURISDICTION.format(jurisdictions="EU"),
        ),
        (IS, {}, {"allowed_jurisdictions": ("EU", "EEA")}, None),  # IS is in the EEA
        (
            US,
            {},
            {"allowed_jurisdictions": ("EU", "EEA")},
            sovereignty.REASON_JURISDICTION.format(jurisdictions="EU,EEA"),
        ),
        # A module's own jurisdiction tags count too.
        (US, {"jurisdictions": frozenset({"EU"})}, {"allowed_jurisdictions": ("EU",)}, None),
        (US, {}, {"allowed_jurisdictions": ("US",)}, None),
        (PL, {}, {"denied_countries": ("PL",)}, sovereignty.REASON_DENIED.format(countries="PL")),
        (
            US,
            {},
            {"denied_countries": ("FIVE_EYES",)},
            sovereignty.REASON_DENIED.format(countries="FIVE_EYES"),
        ),
        (DE, {"certifications": ISO}, {"required_certifications": ("ISO27001",)}, None),
        (
            DE,
            {"certifications": ISO},
            {"required_certifications": ("ISO27001", "C5")},
            sovereignty.REASON_CERTIFICATIONS.format(certifications="ISO27001,C5"),
        ),
        (DE, {"operator_country": "DE"}, {"operator_countries": ("EU",)}, None),
        (
            DE,
            {"operator_country": "US"},
            {"operator_countries": ("EU",)},
            sovereignty.REASON_OPERATOR.format(countries="EU"),
        ),
        (
            DE,
            {},
            {"operator_countries": ("EU",)},
            sovereignty.REASON_OPERATOR.format(countries="EU"),
        ),
        (
            DE,
            {"operator_country": "US"},
            {"denied_operator_countries": ("FIVE_EYES",)},
            sovereignty.REASON_DENIED_OPERATOR.format(countries="FIVE_EYES"),
        ),
        (DE, {"air_gapped": True}, {"require_air_gapped": True}, None),
        (DE, {}, {"require_air_gapped": True}, sovereignty.REASON_AIR_GAP),
    ],
)
def test_enforce(
    where: tuple[str, float, float], mod: dict[str, Any], rules: dict[str, Any], reason: str | None
) -> None:
    fleet, ws = state([module(where=where, **mod)], workload(), [policy(**rules)])
    status = sovereignty.filter(fleet, ws).status(0)
    if reason is None:
        assert status.ok
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (reason,)


def test_policies_intersect() -> None:
    policies = [policy("a", allowed_jurisdictions=("EEA",)), policy("b", denied_countries=("IS",))]
    fleet, ws = state([module("de", DE), module("is", IS)], workload(), policies)
    v = sovereignty.filter(fleet, ws)
    assert v.status(fleet.index["de"]).ok
    assert v.status(fleet.index["is"]).reasons == (
        sovereignty.REASON_DENIED.format(countries="IS"),
    )


def test_audit_does_not_filter_but_reports() -> None:
    audit = policy("watch", enforcement="Audit", allowed_jurisdictions=("EU",))
    fleet, ws = state([module("us", US)], workload(), [audit])
    assert sovereignty.filter(fleet, ws).status(0).ok
    findings = sovereignty.audit_findings(fleet, ws, 0)
    assert findings == [
        "policy watch (Audit): us " + sovereignty.REASON_JURISDICTION.format(jurisdictions="EU")
    ]


def test_unbound_policy_does_nothing() -> None:
    eu_only = policy(
        namespace_selector=Selector.of({"residency": "eu"}), allowed_jurisdictions=("EU",)
    )
    fleet, ws = state([module("us", US)], workload(namespace_labels={"residency": "us"}), [eu_only])
    assert sovereignty.filter(fleet, ws).status(0).ok


def test_missing_named_policy_fails_closed() -> None:
    fleet, ws = state([module()], workload(sovereignty_policies=("gone",)))
    assert sovereignty.filter(fleet, ws).status(0).reasons == (
        sovereignty.REASON_MISSING_POLICY.format(name="gone"),
    )
