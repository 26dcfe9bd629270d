"""Explanations: a line per module and kube-scheduler style aggregated messages."""

from __future__ import annotations

from tests.placement.factories import DE, FR, IN, SG, US, module, policy, pool, region, state
from tests.placement.factories import workload as make_workload

from aifactory.placement import place_one
from aifactory.placement.explain import availability_message, reason_counts
from aifactory.placement.filters import free_gpus, latency, sovereignty

EU = policy("eu", allowed_jurisdictions=("EU", "EEA"))


def issue_fleet() -> list:  # type: ignore[type-arg]
    """Seven modules, none usable, for three different reasons."""
    full = [pool("H100", 8, allocated=8)]
    return [
        module("us1", US),
        module("us2", US),
        module("sg", SG),
        module("fra", DE, pools=full),
        module("par", FR, pools=full),
        module("fra2", DE),
        module("par2", FR),
    ]


def test_message_counts_sorted_like_kube_scheduler() -> None:
    wl = make_workload(
        regions=[region("ap-south", IN)], max_latency_ms=50, gpu_models=frozenset({"H100"})
    )
    fleet, ws = state(issue_fleet(), wl, [EU])
    assert availability_message(fleet, ws) == (
        "0/7 modules are available: 3 outside allowed jurisdictions EU,EEA, "
        "2 insufficient H100, 2 latency > 50 ms for ap-south."
    )
    counts = reason_counts(fleet, ws)
    assert counts[sovereignty.REASON_JURISDICTION.format(jurisdictions="EU,EEA")] == 3
    assert counts[free_gpus.REASON_INSUFFICIENT.format(models="H100")] == 2
    assert counts[latency.REASON_LATENCY.format(ms=50, region="ap-south")] == 2


def test_decision_explains_each_module() -> None:
    wl = make_workload(regions=[region("eu", FR, 1)], gpu_models=frozenset({"H100"}))
    d = place_one(wl, issue_fleet(), [EU])
    assert d.explanation["us1"] == "rejected: outside allowed jurisdictions EU,EEA"
    assert d.explanation["fra"] == "rejected: insufficient H100"
    assert d.explanation["par2"].startswith("selected: 1 replica (eu=1); cost/replica eu ")
    assert "Latency" in d.explanation["par2"] and "Carbon" in d.explanation["par2"]
    assert d.explanation["fra2"].startswith("not selected: cost/replica eu ")
    assert d.message == (
        "2/7 modules are available: 3 outside allowed jurisdictions EU,EEA, 2 insufficient H100."
    )


def test_partial_region_exclusion_is_explained() -> None:
    wl = make_workload(regions=[region("eu", FR, 1), region("ap", SG, 1)], max_latency_ms=50)
    d = place_one(wl, [module("par", FR), module("sg", SG)])
    assert "cannot serve: latency > 50 ms for ap" in d.explanation["par"]
    assert d.unplaced_replicas == 0


def test_audit_findings_on_chosen_modules() -> None:
    audit = policy("watch", enforcement="Audit", denied_countries=("US",))
    d = place_one(make_workload(replicas=1), [module("us", US)], [audit])
    assert d.audit == ("policy watch (Audit): us in denied countries US",)
    assert d.unplaced_replicas == 0
