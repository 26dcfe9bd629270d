"""DataResidency (SameJurisdictionAsDemand): same country, or a group named in the policy's
allowedJurisdictions that both the module and the region's country belong to."""

from __future__ import annotations

import pytest
from tests.placement.factories import DE, FR, IE, IN, IS, NO, US, module, policy, region, state
from tests.placement.factories import workload as make_workload

from aifactory.placement.filters import residency

RESIDENT = residency.SAME_JURISDICTION


@pytest.mark.parametrize(
    ("where", "demand", "allowed", "ok"),
    [
        (DE, IE, ("EU",), True),  # both in the EU
        (IS, IE, ("EU",), False),  # IS is not EU
        (IS, IE, ("EU", "EEA"), True),  # both in the EEA
        (NO, IS, ("EEA",), True),
        (US, IE, ("EU", "EEA", "FIVE_EYES"), False),
        (DE, IE, ("DE", "IE"), False),  # country codes are not groups: no shared group
        (FR, FR, (), True),  # same country always
        (US, US, ("EU",), True),
    ],
)
def test_residency(
    where: tuple[str, float, float],
    demand: tuple[str, float, float],
    allowed: tuple[str, ...],
    ok: bool,
) -> None:
    pol = policy(allowed_jurisdictions=allowed, data_residency=RESIDENT)
    fleet, ws = state([module(where=where)], make_workload(regions=[region("r", demand)]), [pol])
    v = residency.filter(fleet, ws)
    assert bool(v.ok[0, 0]) is ok
    if not ok:
        assert v.reasons[0] == residency.REASON_RESIDENCY.format(region="r", country=demand[0])


def test_module_tags_count_for_groups() -> None:
    pol = policy(allowed_jurisdictions=("EU",), data_residency=RESIDENT)
    tagged = module("tagged", US, jurisdictions=frozenset({"EU"}))
    fleet, ws = state([tagged], make_workload(regions=[region("r", IE)]), [pol])
    assert residency.filter(fleet, ws).ok.all()


def test_without_residency_rule_every_region_passes() -> None:
    pol = policy(allowed_jurisdictions=("EU",))
    fleet, ws = state([module(where=DE)], make_workload(regions=[region("r", IN)]), [pol])
    assert residency.filter(fleet, ws).ok.all()


def test_audit_residency_does_not_filter() -> None:
    pol = policy(enforcement="Audit", allowed_jurisdictions=("EU",), data_residency=RESIDENT)
    fleet, ws = state([module(where=US)], make_workload(regions=[region("r", IE)]), [pol])
    assert residency.filter(fleet, ws).ok.all()
