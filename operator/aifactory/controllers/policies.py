"""SovereigntyPolicy: which deployments it binds, and where they break it.

Enforce policies are honoured by placement and admission; this status makes both kinds
auditable: an Audit policy's violations are exactly what it exists to show, and an Enforce
policy with violations means a module changed under running replicas (they are being moved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aifactory.api import (
    Condition,
    ConditionStatus,
    PolicyViolation,
    SovereigntyPolicy,
    set_condition,
)
from aifactory.placement import FleetState, policy_selects
from aifactory.placement.compliance import module_violations
from aifactory.placement.from_api import module_view, policy_view, workload_view

from .fleet import HubSnapshot


def policy_status(
    policy: SovereigntyPolicy,
    world: HubSnapshot,
    now: datetime,
    fleet: FleetState | None = None,
) -> dict[str, Any]:
    """The policy's status (pure): bound deployments, violations, Ready and Compliant.

    Pass `fleet` to share one FleetState across every policy of a round.
    """
    view = policy_view(policy)
    fleet = fleet or FleetState([module_view(m) for m in world.modules])
    bound: list[str] = []
    violations: list[PolicyViolation] = []
    for d in world.deployments:
        workload = workload_view(d, world.namespace_labels.get(d.namespace))
        if not (policy_selects(view, workload) or policy.name in d.spec.sovereignty_policies):
            continue
        bound.append(d.ref)
        for p in d.status.placements if d.status else []:
            reasons = module_violations(fleet, view, p.module)
            if reasons and p.replicas > 0:
                violations.append(
                    PolicyViolation(deployment=d.ref, module=p.module, message="; ".join(reasons))
                )
    conditions = list(policy.status.conditions) if policy.status else []
    ok = not violations
    conditions = set_condition(
        conditions,
        Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Evaluated",
            message=f"binds {len(bound)} deployments",
            observed_generation=policy.metadata.generation,
        ),
        now=now,
    )
    conditions = set_condition(
        conditions,
        Condition(
            type="Compliant",
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason="NoViolations" if ok else "Violations",
            message="no bound deployment runs where this policy forbids"
            if ok
            else f"{len(violations)} placements break this policy",
            observed_generation=policy.metadata.generation,
        ),
        now=now,
    )
    for type_ in ("Reconciling", "Stalled"):  # kstatus: nothing in progress, nothing stuck
        conditions = set_condition(
            conditions,
            Condition(
                type=type_,
                status=ConditionStatus.FALSE,
                reason="AsExpected",
                message="evaluated",
                observed_generation=policy.metadata.generation,
            ),
            now=now,
        )
    return {
        "observedGeneration": policy.metadata.generation,
        "boundDeployments": sorted(bound),
        "boundCount": len(bound),
        "violations": [
            v.model_dump(by_alias=True, mode="json", exclude_none=True) for v in violations
        ],
        "conditions": [
            c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in conditions
        ],
    }
