"""What the planner counts as Ready in a member: the make-before-break signal."""

from __future__ import annotations

from datetime import UTC, datetime

from aifactory.clusters.observe import ClusterView, PodInfo, WorkloadInfo, member_replicas

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def workload(replicas: int, ready: int, generation: int = 2, observed: int = 2) -> WorkloadInfo:
    return WorkloadInfo(
        namespace="eu-chat",
        name="eu-assistant-oslo",
        owner="eu-chat/eu-assistant",
        module="oslo",
        replicas=replicas,
        ready_replicas=ready,
        generation=generation,
        observed_generation=observed,
    )


def pod(i: int, ready: bool = True) -> PodInfo:
    return PodInfo(
        "eu-chat", f"p{i}", "n", 1, "Running", ready, T0, False, "eu-chat/eu-assistant", "oslo"
    )


def test_ready_never_exceeds_what_the_deployment_asks_for_after_a_scale_down() -> None:
    # scaled 7 -> 5 a moment ago: status still says 7 Ready (the soak's dip: a handover
    # elsewhere looked complete and the replicas it relied on were being deleted)
    view = ClusterView(
        "hub",
        pods=tuple(pod(i) for i in range(7)),
        workloads=(workload(5, 7, generation=3, observed=2),),
    )
    assert member_replicas(view)["eu-chat/eu-assistant"]["oslo"].ready == 5


def test_ready_is_the_status_count_when_it_is_current() -> None:
    view = ClusterView(
        "hub", pods=tuple(pod(i, ready=i < 3) for i in range(5)), workloads=(workload(5, 3),)
    )
    assert member_replicas(view)["eu-chat/eu-assistant"]["oslo"].ready == 3


def test_without_a_deployment_ready_pods_count() -> None:
    view = ClusterView("hub", pods=(pod(0), pod(1, ready=False)))
    assert member_replicas(view)["eu-chat/eu-assistant"]["oslo"].ready == 1
