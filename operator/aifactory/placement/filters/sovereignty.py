"""Sovereignty: the module-level rules of every bound Enforce policy (they intersect).

Allowed jurisdictions match a module's country, the groups its country belongs to (EU, EEA,
FIVE_EYES) and the extra tags in its `location.jurisdictions`. Denied countries and operator
countries accept group names too. None of this changes without a spec change, so failures are
UnschedulableAndUnresolvable. Audit policies do not filter; `audit_findings` reports them.
Per-region data residency is the `residency` plugin.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from aifactory.api.jurisdictions import expand
from aifactory.placement.framework import BoolArray, Code, Verdicts
from aifactory.placement.model import PolicyView
from aifactory.placement.state import FleetState, WorkloadState

NAME = "Sovereignty"
REASON_JURISDICTION = "outside allowed jurisdictions {jurisdictions}"
REASON_DENIED = "in denied countries {countries}"
REASON_OPERATOR = "operator country not in {countries}"
REASON_DENIED_OPERATOR = "operator country in {countries}"
REASON_CERTIFICATIONS = "missing certifications {certifications}"
REASON_AIR_GAP = "not air-gapped"
REASON_MISSING_POLICY = "sovereignty policy {name} not found"

Check = tuple[BoolArray, str]


def policy_checks(fleet: FleetState, policy: PolicyView) -> list[Check]:
    """(fails, reason) for each rule of one policy; cached per policy for the cycle."""
    key = ("sovereignty", policy)
    hit = fleet.cache.get(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    out: list[Check] = []
    if policy.allowed_jurisdictions:
        ok = np.zeros(fleet.n, np.bool_)
        for token in policy.allowed_jurisdictions:
            ok |= fleet.tag_mask(token)
        reason = REASON_JURISDICTION.format(jurisdictions=",".join(policy.allowed_jurisdictions))
        out.append((~ok, reason))
    if policy.denied_countries:
        bad = fleet.country_mask(expand(policy.denied_countries))
        out.append((bad, REASON_DENIED.format(countries=",".join(policy.denied_countries))))
    if policy.operator_countries:
        ids = [
            fleet.countries[c] for c in expand(policy.operator_countries) if c in fleet.countries
        ]
        ok = np.isin(fleet.operator_country, ids)
        reason = REASON_OPERATOR.format(countries=",".join(policy.operator_countries))
        out.append((~ok, reason))
    if policy.denied_operator_countries:
        codes = expand(policy.denied_operator_countries)
        ids = [fleet.countries[c] for c in codes if c in fleet.countries]
        bad = np.isin(fleet.operator_country, ids)
        reason = REASON_DENIED_OPERATOR.format(countries=",".join(policy.denied_operator_countries))
        out.append((bad, reason))
    if policy.required_certifications:
        ok = np.ones(fleet.n, np.bool_)
        for cert in policy.required_certifications:
            ok &= fleet.cert_mask(cert)
        reason = REASON_CERTIFICATIONS.format(
            certifications=",".join(policy.required_certifications)
        )
        out.append((~ok, reason))
    if policy.require_air_gapped:
        out.append((~fleet.air_gapped, REASON_AIR_GAP))
    fleet.cache[key] = out
    return out


def cache_key(ws: WorkloadState) -> Hashable:
    """The answer depends only on the bound Enforce policies and the missing names."""
    return (ws.binding.enforce, ws.binding.missing)


def filter(fleet: FleetState, ws: WorkloadState) -> Verdicts:
    """Every rule of every bound Enforce policy; a named but missing policy fails closed."""
    v = Verdicts.passing(NAME, fleet.n)
    everything = np.ones(fleet.n, np.bool_)
    for name in ws.binding.missing:
        v.add(
            everything, REASON_MISSING_POLICY.format(name=name), Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        )
    for policy in ws.binding.enforce:
        for fails, reason in policy_checks(fleet, policy):
            v.add(fails, reason, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
    return v


def audit_findings(fleet: FleetState, ws: WorkloadState, module: int) -> list[str]:
    """What bound Audit policies would have rejected on a chosen module: recorded, not enforced."""
    out: list[str] = []
    for policy in ws.binding.audit:
        for fails, reason in policy_checks(fleet, policy):
            if fails[module]:
                out.append(f"policy {policy.name} (Audit): {fleet.names[module]} {reason}")
    return out
