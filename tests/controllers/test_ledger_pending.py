"""Pods Pending past pendingTimeout on a node-pool module: what the ledger and the planner make
of them from one cycle to the next (pure: run_cycle does no I/O).

CI once saw a deployment bound to one module (frankfurt, free L4s) say "1/2 replicas unplaced;
... insufficient L4. Allowed modules are full" and stay Stalled after the hub's kube-scheduler
was slow to reconnect: its pods had been Pending past pendingTimeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.controllers.test_cycle import READY

from aifactory.api import AIFactoryModule, InferenceDeployment
from aifactory.clusters.connect import MemberTarget
from aifactory.clusters.observe import ClusterView, NodeInfo, PodInfo, WorkloadInfo
from aifactory.controllers import cycle, planner
from aifactory.controllers.fleet import HubSnapshot
from aifactory.controllers.runtime import Runtime
from aifactory.settings import OperatorSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REF = "ns/frankfurt-bound"
TIMEOUT = 30.0


def frankfurt() -> AIFactoryModule:
    return AIFactoryModule.model_validate(
        {
            "metadata": {"name": "frankfurt"},
            "spec": {
                "location": {"country": "DE", "latitude": 50.1, "longitude": 8.7},
                "energy": {
                    "sources": [{"type": "grid", "share": 1.0}],
                    "carbonIntensity": 300,
                    "powerBudgetKW": 20,
                },
                "capacity": {"gpus": [{"model": "L4", "count": 4, "memoryGiB": 24, "powerW": 72}]},
                "cluster": {"nodeSelector": {"aifactory.dev/module": "frankfurt"}},
            },
            "status": READY,
        }
    )


def deployment() -> InferenceDeployment:
    return InferenceDeployment.model_validate(
        {
            "metadata": {
                "name": "frankfurt-bound",
                "namespace": "ns",
                "uid": "uid-1",
                "generation": 1,
            },
            "spec": {
                "model": {"name": "m", "image": "registry.example/serve:1"},
                "resources": {"gpusPerReplica": 1, "gpuModels": ["L4"]},
                "replicas": {"fixed": 2},
                "placement": {"modules": ["frankfurt"]},
            },
        }
    )


NODE = NodeInfo("frankfurt-n0", {"aifactory.dev/module": "frankfurt"}, 4, "L4", True, False, False)


def pod(name: str, *, bound: bool, ready: bool, age: float, terminating: bool = False) -> PodInfo:
    return PodInfo(
        "ns",
        name,
        NODE.name if bound else "",
        1,
        "Running" if ready else "Pending",
        ready,
        NOW - timedelta(seconds=age),
        terminating,
        owner=REF,
        module="frankfurt",
        unschedulable="" if bound else "no nodes available to schedule pods",
    )


class Members:
    def target(self, m: AIFactoryModule) -> MemberTarget:
        return MemberTarget("hub", None, None, dict(m.spec.cluster.node_selector or {}))  # type: ignore[arg-type]


@dataclass
class Executor:
    asked_for: dict[str, int] = field(default_factory=dict)

    def errors(self, ref: str) -> dict[str, Any]:
        return {}

    def in_flight(self, ref: str) -> set[str]:
        return set()

    def asked(self, ref: str) -> dict[str, int]:
        return dict(self.asked_for)

    def forget(self, ref: str) -> None:
        pass


@dataclass
class World:
    """One hub module; feeds each cycle's decisions and pending blocks back as the loop does."""

    pods: tuple[PodInfo, ...] = ()
    member_replicas: int | None = None
    member_ready: int = 0
    executor: Executor = field(default_factory=Executor)
    rt: Runtime = field(init=False)

    def __post_init__(self) -> None:
        self.rt = Runtime(
            settings=OperatorSettings(pending_timeout=TIMEOUT),
            hub=None,  # type: ignore[arg-type]
            members=Members(),  # type: ignore[arg-type]
            executor=self.executor,  # type: ignore[arg-type]
            recorder=None,  # type: ignore[arg-type]
            writer=None,  # type: ignore[arg-type]
        )

    def cycle(self, now: datetime = NOW) -> cycle.CycleResult:
        snap = HubSnapshot(
            modules=(frankfurt(),), deployments=(deployment(),), namespace_labels={"ns": {}}
        )
        workloads = (
            ()
            if self.member_replicas is None
            else (
                WorkloadInfo(
                    "ns",
                    "frankfurt-bound-frankfurt",
                    REF,
                    "frankfurt",
                    self.member_replicas,
                    self.member_ready,
                    1,
                    1,
                ),
            )
        )
        views = {
            "hub": ClusterView(
                "hub",
                nodes=(NODE,),
                pods=self.pods,
                workloads=workloads,
                synced=True,
                reachable=True,
                last_seen=now,
            )
        }
        out = cycle.run_cycle(self.rt, snap, views, {REF}, now)
        for ref, st in out.decided.items():
            self.rt.decided[ref] = st
            self.rt.decided_uid[ref] = out.decided_uid[ref]
        for ref, blocked in out.blocked.items():
            self.rt.blocked[ref] = blocked
        self.rt.blind_at.update(out.blind_at)
        for job in out.jobs:  # what the executor records when it takes a job
            a = job.action
            self.executor.asked_for[a.module] = 0 if a.kind == "delete" else a.replicas
        return out

    def placements(self) -> dict[str, int]:
        return {p.module: p.replicas for p in self.rt.decided[REF].placements}

    def condition(self, kind: str) -> tuple[str, str, str]:
        c = next(c for c in self.rt.decided[REF].conditions if c.type == kind)
        return c.status.value, c.reason, c.message


def actions(out: cycle.CycleResult) -> list[tuple[str, str, int]]:
    return [(j.action.kind, j.action.module, j.action.replicas) for j in out.jobs]


def placed_world() -> World:
    w = World()
    w.cycle()
    assert w.placements() == {"frankfurt": 2}
    return w


def stuck_world() -> World:
    """Placed on frankfurt (2 replicas); pod a Ready, pod b Pending past the timeout."""
    w = placed_world()
    w.member_replicas, w.member_ready = 2, 1
    w.pods = (
        pod("a", bound=True, ready=True, age=60),
        pod("b", bound=False, ready=False, age=TIMEOUT + 5),
    )
    return w


def test_our_own_bound_and_pending_pods_are_not_counted_against_us() -> None:
    """Both replicas bound (one Pending, not yet past the timeout): frankfurt keeps both; the
    ledger counts our bound pods once, and gives them back before placing us."""
    w = placed_world()
    w.member_replicas, w.member_ready = 2, 1
    w.pods = (
        pod("a", bound=True, ready=True, age=60),
        pod("b", bound=True, ready=False, age=10),
    )
    w.cycle()
    assert w.placements() == {"frankfurt": 2}
    assert w.condition("Stalled")[0] == "False"


def test_a_replica_pending_past_the_timeout_never_takes_its_ready_sibling_with_it() -> None:
    """Cycle 1 takes the stuck replica off frankfurt (a block) and scales the member to 1.
    Until the ReplicaSet deletes the Pending pod, the next cycles still see it: it must not be
    taken off the placement a second time (the Ready replica is all that is left)."""
    w = stuck_world()
    first = w.cycle()
    assert w.placements() == {"frankfurt": 1}
    assert any(a[1:] == ("frankfurt", 1) for a in actions(first)), actions(first)
    assert "frankfurt" in w.rt.blocked[REF]
    # the scale reached the member's Deployment; its ReplicaSet has not deleted pod b yet
    w.member_replicas = 1
    for dt in (1, 2):
        out = w.cycle(NOW + timedelta(seconds=dt))
        assert w.placements() == {"frankfurt": 1}, out.jobs
        assert not any(kind == "delete" for kind, _, _ in actions(out))


def test_the_block_message_says_blocked_not_full_and_it_ends() -> None:
    w = stuck_world()
    w.cycle()
    status, reason, message = w.condition("Stalled")
    assert (status, reason) == ("True", "Unschedulable")
    assert "stayed Pending" in message, message
    # pod b is gone; once the block runs out frankfurt takes the replica back
    w.member_replicas, w.pods = 1, (pod("a", bound=True, ready=True, age=60),)
    block = w.rt.blocked[REF]["frankfurt"]
    assert block.until is not None
    w.cycle(block.until - timedelta(seconds=1))
    assert w.placements() == {"frankfurt": 1}
    w.cycle(block.until + timedelta(seconds=1))
    assert w.placements() == {"frankfurt": 2}
    assert w.condition("Stalled")[0] == "False"
    assert planner.block_seconds(TIMEOUT, 1) == 300.0


def test_a_restart_before_the_stuck_pod_is_gone_takes_nothing_off_twice() -> None:
    """The operator restarts right after taking a stuck replica off (status says frankfurt: 1,
    the member asks for 1) and before the ReplicaSet deleted the Pending pod: the block and
    what it took are lost with the operator's memory. The member's own counts still say so
    (two pods, one asked for): the Pending one is on its way out, the Ready one stays."""
    w = stuck_world()
    w.cycle()
    assert w.placements() == {"frankfurt": 1}
    # restart: status.placements survives (rt.decided stands for it), memory does not
    w.rt.blocked.clear()
    w.executor.asked_for.clear()
    w.member_replicas = 1
    out = w.cycle(NOW + timedelta(seconds=1))
    # the block went with the memory, so frankfurt may be asked for 2 again; never for 0
    assert w.placements().get("frankfurt", 0) >= 1, out.jobs
    assert all(kind != "delete" and n >= 1 for kind, _, n in actions(out)), actions(out)
    # b is gone and the member asks for 2 again; its new pod c gets stuck with nothing on
    # its way out: that one is taken off (once), the Ready one stays
    w.member_replicas, w.member_ready = 2, 1
    w.pods = (
        pod("a", bound=True, ready=True, age=60),
        pod("c", bound=False, ready=False, age=TIMEOUT + 5),
    )
    w.cycle(NOW + timedelta(seconds=3))
    assert w.placements() == {"frankfurt": 1}
    assert "frankfurt" in w.rt.blocked[REF]
