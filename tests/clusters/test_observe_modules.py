"""Module capacity from a cluster's caches: which nodes belong to which module (pure)."""

from __future__ import annotations

from aifactory.clusters.observe import ClusterView, NodeInfo, PodInfo, observe_modules


def _node(name: str, labels: dict[str, str], gpus: int = 8, *, ready: bool = True) -> NodeInfo:
    return NodeInfo(name, labels, gpus, "H100", ready, False, False)


def _pod(node: str, gpus: int, owner: str = "") -> PodInfo:
    name = f"p-{node}-{gpus}-{owner}"
    return PodInfo("ns", name, node, gpus, "Running", True, None, False, owner)


VIEW = ClusterView(
    "hub",
    nodes=(
        _node("a0", {"pool": "a", "zone": "z1"}),
        _node("a1", {"pool": "a", "zone": "z2"}),
        _node("b0", {"pool": "b", "zone": "z1"}),
        _node("b1", {"pool": "b", "zone": "z1"}, ready=False),
        _node("cpu", {"pool": "a", "zone": "z1"}, gpus=0),
    ),
    pods=(_pod("a0", 3, "ns/chat"), _pod("a1", 2), _pod("b0", 8, "ns/big"), _pod("cpu", 0)),
    synced=True,
    reachable=True,
)


def test_each_module_counts_only_the_gpu_nodes_all_of_its_selector_matches() -> None:
    got = observe_modules(
        VIEW,
        {
            "pool-a": {"pool": "a"},
            # the first label matches four nodes, the second narrows it to the a-pool one
            "a-in-z1": {"zone": "z1", "pool": "a"},
            "pool-b": {"pool": "b"},
            "nothing": {"pool": "a", "zone": "z9"},
            "everything": {},
        },
    )
    a = got["pool-a"].pools["H100"]
    assert (a.allocatable, a.requested, a.nodes, a.usable_nodes) == (16, 5, 2, 2)
    assert got["pool-a"].owned == {("ns/chat", "H100"): 3}
    z1 = got["a-in-z1"].pools["H100"]
    assert (z1.allocatable, z1.requested, z1.nodes) == (8, 3, 1)
    b = got["pool-b"].pools["H100"]
    # the NotReady node is a node of the module but offers nothing
    assert (b.allocatable, b.requested, b.nodes, b.ready_nodes, b.usable_nodes) == (8, 8, 2, 1, 1)
    assert got["nothing"].pools == {}
    every = got["everything"].pools["H100"]
    assert (every.allocatable, every.requested, every.nodes) == (24, 13, 4)
