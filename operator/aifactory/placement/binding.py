"""Which SovereigntyPolicies bind a deployment.

A policy binds when its namespaceSelector matches the namespace's labels, its
deploymentSelector matches the deployment's labels and the deployment's data classification is
one it lists (an empty list means all); a deployment also names extra policies in
`spec.sovereigntyPolicies`. This is a pure function because the operator, admission and the
offline CLI must agree on it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aifactory.placement.model import PolicyView, WorkloadView


@dataclass(frozen=True, slots=True)
class Binding:
    """The policies that apply to one deployment, split by enforcement."""

    enforce: tuple[PolicyView, ...] = ()
    audit: tuple[PolicyView, ...] = ()
    #: Names in `spec.sovereigntyPolicies` with no such policy: the engine cannot prove
    #: compliance, so it places nothing (fail closed).
    missing: tuple[str, ...] = ()


def policy_selects(policy: PolicyView, workload: WorkloadView) -> bool:
    """True when the policy's selectors and classifications pick this deployment.

    An absent selector matches everything, like an empty one: a policy with no selectors is
    fleet-wide by design.
    """
    if policy.namespace_selector is not None and not policy.namespace_selector.matches(
        workload.namespace_labels
    ):
        return False
    if policy.deployment_selector is not None and not policy.deployment_selector.matches(
        workload.labels
    ):
        return False
    return not policy.data_classifications or (
        workload.data_classification in policy.data_classifications
    )


def bind(workload: WorkloadView, policies: Iterable[PolicyView]) -> Binding:
    """Every policy that binds `workload`, sorted by name so the outcome is deterministic."""
    by_name = {p.name: p for p in policies}
    chosen = {name for name, p in by_name.items() if policy_selects(p, workload)}
    missing = tuple(sorted({n for n in workload.sovereignty_policies if n not in by_name}))
    chosen |= {n for n in workload.sovereignty_policies if n in by_name}
    ordered = [by_name[n] for n in sorted(chosen)]
    return Binding(
        enforce=tuple(p for p in ordered if p.enforcement == "Enforce"),
        audit=tuple(p for p in ordered if p.enforcement != "Enforce"),
        missing=missing,
    )
