"""Adapters from the aifactory.dev pydantic models to the engine's views.

The engine is pure and knows nothing of pydantic; the operator and the CLI both come through
here, so "what status means for placement" is decided once:

* a module without status is Ready with its declared capacity free (offline files);
* a module with status is Ready only if its Ready condition is True, unless it has no Ready
  condition at all and `assume_ready` is set (the CLI's default; the operator passes False);
* discovered capacity (status.capacity) replaces the declared count per pool, and GPUs
  allocated there count as used, minus what the deployments being placed hold now (the engine
  re-places those itself);
* the effective carbon intensity and renewable share are the live ones when status has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aifactory.api import (
    AIFactoryModule,
    ConditionStatus,
    InferenceDeployment,
    LabelSelector,
    SovereigntyPolicy,
)
from aifactory.api.priority import PriorityClass
from aifactory.placement.model import (
    CurrentAssignment,
    GpuPool,
    ModuleView,
    PolicyView,
    RegionDemand,
    Requirement,
    Selector,
    WorkloadView,
    split_replicas,
)
from aifactory.placement.priority import PriorityClassView, priority_of


def selector(value: LabelSelector | None) -> Selector | None:
    """The engine's hashable selector; None stays None (matches everything)."""
    if value is None:
        return None
    return Selector.of(
        value.match_labels,
        tuple(
            Requirement(r.key, r.operator.value, tuple(r.values))  # type: ignore[arg-type]
            for r in value.match_expressions
        ),
    )


def _ready(module: AIFactoryModule, assume_ready: bool) -> bool:
    if module.status is None:
        return True
    cond = module.condition("Ready")
    if cond is None:
        return assume_ready
    return cond.status is ConditionStatus.TRUE


def module_view(
    module: AIFactoryModule,
    *,
    held: Mapping[str, int] | None = None,
    assume_ready: bool = True,
) -> ModuleView:
    """One module as the engine sees it.

    `held` maps GPU model -> GPUs that deployments being placed now hold on this module; they
    are taken out of the allocated count so the engine does not count them twice.
    """
    spec = module.spec
    discovered = {}
    if module.status is not None and module.status.capacity is not None:
        discovered = {p.model: p for p in module.status.capacity.gpus}
    held = held or {}
    pools: list[GpuPool] = []
    for p in spec.capacity.gpus:
        seen = discovered.get(p.model)
        if seen is None:
            count, allocated = p.count, 0
        else:
            count = seen.gpus_allocatable
            allocated = max(0, seen.gpus_allocated - held.get(p.model, 0))
        pools.append(GpuPool(p.model, count, float(p.memory_gib), p.power_w, allocated))
    sources = frozenset(s.type.value for s in spec.energy.sources if s.share > 0)
    sec = spec.security
    return ModuleView(
        name=module.name,
        country=spec.location.country,
        latitude=spec.location.latitude,
        longitude=spec.location.longitude,
        pools=tuple(pools),
        power_budget_kw=spec.energy.power_budget_kw,
        pue=spec.energy.pue,
        carbon_intensity=module.effective_carbon_intensity(),
        renewable_share=module.effective_renewable_share(),
        sources=sources,
        jurisdictions=frozenset(spec.location.jurisdictions),
        certifications=frozenset(sec.certifications),
        operator_country=sec.operator_country,
        air_gapped=sec.air_gapped,
        ready=_ready(module, assume_ready),
        schedulable=spec.schedulable,
        labels=dict(module.metadata.labels),
        ready_fraction=module.ready_fraction(),
    )


def priority_class_view(pc: PriorityClass) -> PriorityClassView:
    """One PriorityClass as the engine sees it."""
    return PriorityClassView(pc.name, pc.value, pc.global_default, pc.preemption_policy)


def workload_view(
    deployment: InferenceDeployment,
    namespace_labels: Mapping[str, str] | None = None,
    *,
    priority_classes: Iterable[PriorityClassView] = (),
) -> WorkloadView:
    """One deployment as the engine sees it, with replicas already split per region.

    When min/max/fixed changes the total, regions keep their proportions (largest remainder).
    The guaranteed count is replicas.min (default 1) or fixed; priority and preemption policy
    come from `spec.priorityClassName` among `priority_classes` (`priority.priority_of`, which
    raises UnknownPriorityClassError for a class that does not exist).
    """
    value, policy = priority_of(deployment.spec.priority_class_name, priority_classes)
    spec = deployment.spec
    total = deployment.replicas_needed()
    regions: tuple[RegionDemand, ...] = ()
    if spec.demand.regions:
        need = deployment.replicas_per_region()
        if sum(need.values()) != total:
            weights = (
                {k: float(v) for k, v in need.items()}
                if sum(need.values()) > 0
                else {r.name: r.requests_per_second for r in spec.demand.regions}
            )
            need = split_replicas(total, weights)
        regions = tuple(
            RegionDemand(r.name, r.latitude, r.longitude, need[r.name], r.country)
            for r in spec.demand.regions
        )
    current: tuple[CurrentAssignment, ...] = ()
    if deployment.status is not None:
        current = tuple(
            CurrentAssignment(p.module, p.replicas, dict(p.regions))
            for p in deployment.status.placements
            if p.replicas > 0
        )
    res = spec.resources
    return WorkloadView(
        key=deployment.ref,
        replicas=total,
        gpus_per_replica=res.gpus_per_replica,
        gpu_models=frozenset(res.gpu_models),
        min_gpu_memory_gib=float(res.min_gpu_memory_gib),
        regions=regions,
        max_latency_ms=spec.slo.max_latency_ms,
        min_modules=spec.slo.min_modules,
        latency_weight=spec.objective.latency_weight,
        carbon_weight=spec.objective.carbon_weight,
        min_renewable_share=spec.energy.min_renewable_share,
        max_carbon_intensity=spec.energy.max_carbon_intensity,
        allowed_sources=frozenset(s.value for s in spec.energy.allowed_sources),
        placement_modules=frozenset(spec.placement.modules),
        module_selector=selector(spec.placement.module_selector),
        data_classification=spec.data_classification.value,
        sovereignty_policies=tuple(spec.sovereignty_policies),
        labels=dict(deployment.metadata.labels),
        namespace_labels=dict(namespace_labels or {}),
        current=current,
        min_replicas=spec.guaranteed_replicas(),
        priority=value,
        preemption_policy=policy,
        min_reliability=spec.min_reliability,
        reliability_weight=spec.objective.reliability_weight,
    )


def policy_view(policy: SovereigntyPolicy) -> PolicyView:
    """One policy as the engine sees it (lists keep their order for messages)."""
    spec = policy.spec
    return PolicyView(
        name=policy.name,
        enforcement="Enforce" if policy.enforced else "Audit",
        namespace_selector=selector(spec.namespace_selector),
        deployment_selector=selector(spec.deployment_selector),
        data_classifications=frozenset(c.value for c in spec.data_classifications),
        allowed_jurisdictions=tuple(spec.allowed_jurisdictions),
        denied_countries=tuple(spec.denied_countries),
        required_certifications=tuple(spec.required_certifications),
        operator_countries=tuple(spec.operator_countries),
        denied_operator_countries=tuple(spec.denied_operator_countries),
        require_air_gapped=spec.require_air_gapped,
        data_residency="SameJurisdictionAsDemand"
        if spec.data_residency.value == "SameJurisdictionAsDemand"
        else "None",
    )


def held_gpus(
    modules: Sequence[AIFactoryModule], deployments: Sequence[InferenceDeployment]
) -> dict[str, dict[str, int]]:
    """GPUs the deployments' running placements hold, per module and pool model.

    status.placements[].gpus says which pools they hold (as the member reported, or as the
    engine chose for pods not running yet); a status without it is read with the engine's own
    rule: accepted pools, lowest board power first.
    """
    by_name = {m.name: m for m in modules}
    out: dict[str, dict[str, int]] = {}
    for d in deployments:
        if d.status is None:
            continue
        res = d.spec.resources
        for p in d.status.placements:
            module = by_name.get(p.module)
            if module is None or p.replicas <= 0:
                continue
            held = out.setdefault(p.module, {})
            if p.gpus:
                for model, n in p.gpus.items():
                    held[model] = held.get(model, 0) + n
                continue
            gpus = p.replicas * res.gpus_per_replica
            pools = sorted(
                (g for g in module.spec.capacity.gpus if res.accepts(g.model, g.memory_gib)),
                key=lambda g: g.power_w,
            )
            for g in pools:
                take = min(gpus, g.count - held.get(g.model, 0))
                if take > 0:
                    held[g.model] = held.get(g.model, 0) + take
                    gpus -= take
    return out


#: Former private name, still imported by the controllers.
_held_gpus = held_gpus


@dataclass(frozen=True, slots=True)
class EngineInputs:
    """Everything the engine needs, converted once."""

    modules: tuple[ModuleView, ...]
    workloads: tuple[WorkloadView, ...]
    policies: tuple[PolicyView, ...]


def engine_inputs(
    modules: Iterable[AIFactoryModule],
    deployments: Iterable[InferenceDeployment],
    policies: Iterable[SovereigntyPolicy] = (),
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    *,
    assume_ready: bool = True,
    priority_classes: Iterable[PriorityClassView] = (),
) -> EngineInputs:
    """Convert a whole snapshot: modules, deployments (with their namespaces' labels), policies.

    GPUs held by the given deployments' running placements are not counted as allocated, since
    the engine places those deployments again.
    """
    mods = list(modules)
    deps = list(deployments)
    labels = namespace_labels or {}
    held = held_gpus(mods, deps)
    classes = tuple(priority_classes)
    return EngineInputs(
        modules=tuple(
            module_view(m, held=held.get(m.name), assume_ready=assume_ready) for m in mods
        ),
        workloads=tuple(
            workload_view(d, labels.get(d.namespace), priority_classes=classes) for d in deps
        ),
        policies=tuple(policy_view(p) for p in policies),
    )
