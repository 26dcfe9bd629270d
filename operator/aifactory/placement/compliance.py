"""Sovereignty questions asked outside a placement cycle: admission and policy status.

Admission must reject an InferenceDeployment whose pinned modules an Enforce policy forbids,
or whose demand regions no allowed module may serve under data residency; a policy's status
lists the deployments running where it forbids. Both reuse the sovereignty and residency
plugins' own checks, so the webhook, the status and the engine can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aifactory.placement.binding import bind
from aifactory.placement.filters import residency as residency_filter
from aifactory.placement.filters import sovereignty as sovereignty_filter
from aifactory.placement.filters.residency import SAME_JURISDICTION, allowed_for
from aifactory.placement.filters.sovereignty import policy_checks
from aifactory.placement.model import ModuleView, PolicyView, WorkloadView
from aifactory.placement.state import FleetState, WorkloadState


@dataclass(frozen=True, slots=True)
class Problem:
    """One rule a deployment breaks: which policy, which rule, in words."""

    policy: str
    message: str


def module_violations(fleet: FleetState, policy: PolicyView, module: str) -> list[str]:
    """Reasons `policy` forbids `module` (empty: allowed or unknown module)."""
    i = fleet.index.get(module)
    if i is None:
        return []
    return [reason for fails, reason in policy_checks(fleet, policy) if fails[i]]


def admission_problems(
    workload: WorkloadView,
    modules: Sequence[ModuleView],
    policies: Iterable[PolicyView],
) -> list[Problem]:
    """Why an Enforce policy makes this deployment impossible as written, or nothing.

    Only what can never be fixed by the fleet changing is reported: a pinned module a policy
    forbids, a pinned module that does not exist is left to placement (it may be created later),
    and a demand region that no module of the fleet (or of the pin list) may serve.
    """
    binding = bind(workload, policies)
    out: list[Problem] = []
    for name in binding.missing:
        out.append(
            Problem(
                name, f"SovereigntyPolicy {name} named in spec.sovereigntyPolicies does not exist"
            )
        )
    if not binding.enforce:
        return out
    fleet = FleetState(modules)
    for policy in binding.enforce:
        for module in sorted(workload.placement_modules):
            for reason in module_violations(fleet, policy, module):
                out.append(
                    Problem(
                        policy.name,
                        f"SovereigntyPolicy {policy.name} (Enforce) forbids pinned module "
                        f"{module}: {reason}",
                    )
                )
    candidates = np.ones(fleet.n, np.bool_)
    if workload.placement_modules:
        candidates = np.isin(np.array(fleet.names), sorted(workload.placement_modules))
    for policy in binding.enforce:
        for fails, _ in policy_checks(fleet, policy):
            candidates &= ~fails
    for policy in binding.enforce:
        if policy.data_residency != SAME_JURISDICTION:
            continue
        for region in workload.regions:
            if region.country is None:
                continue
            if not (allowed_for(fleet, policy, region.country) & candidates).any():
                allowed = ",".join(policy.allowed_jurisdictions) or "its own country"
                out.append(
                    Problem(
                        policy.name,
                        f"SovereigntyPolicy {policy.name} (Enforce) data residency: no allowed "
                        f"module may serve region {region.name} ({region.country}); users there "
                        f"may only be served from {region.country} or a shared group of {allowed}",
                    )
                )
    return out


def forbidden_cells(fleet: FleetState, ws: WorkloadState) -> dict[tuple[str, str], str]:
    """(region, module) pairs a bound Enforce policy forbids, with the reason.

    Only sovereignty and data residency count: these are the rules under which replicas leave
    at once (compliance wins over make-before-break). Region "" stands for a deployment
    without demand regions.
    """
    out: dict[tuple[str, str], str] = {}
    for v in ws.module_verdicts:
        if v.plugin != sovereignty_filter.NAME:
            continue
        for i in np.flatnonzero(~v.ok):
            reason = "; ".join(v.status(int(i)).reasons)
            for region in ws.region_names:
                out[(region, fleet.names[int(i)])] = reason
    for rv in ws.region_verdicts:
        if rv.plugin != residency_filter.NAME:
            continue
        for r, region in enumerate(ws.region_names):
            for i in np.flatnonzero(~rv.ok[r]):
                out.setdefault((region, fleet.names[int(i)]), rv.reasons[r])
    return out
