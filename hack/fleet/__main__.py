"""`python -m hack.fleet up|down|status|stop NAME|start NAME|bin-dir|tools`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import tools
from .fleet import HUB, Fleet, FleetConfig, FleetError, NodePool


def _parse_pools(spec: str, *, nodes: int, gpus: int) -> dict[str, tuple[NodePool, ...]]:
    """`cluster=module:MODEL[:NODES[:GPUS]],...;cluster2=...` -> node pools per cluster."""
    pools: dict[str, list[NodePool]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        cluster, _, rest = part.partition("=")
        if not rest:
            raise FleetError(
                f"--pools entry {part!r} must look like cluster=module:MODEL[:NODES[:GPUS]]"
            )
        for item in rest.split(","):
            fields = item.split(":")
            if len(fields) < 2:
                raise FleetError(
                    f"--pools pool {item!r} must look like module:MODEL[:NODES[:GPUS]]"
                )
            pools.setdefault(cluster.strip(), []).append(
                NodePool(
                    module=fields[0],
                    gpu_model=fields[1],
                    nodes=int(fields[2]) if len(fields) > 2 else nodes,
                    gpus_per_node=int(fields[3]) if len(fields) > 3 else gpus,
                )
            )
    return {k: tuple(v) for k, v in pools.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.fleet", description=__doc__)
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("AIFACTORY_FLEET_ROOT") or ".fleet"),
        help="state, kubeconfigs and logs (default: $AIFACTORY_FLEET_ROOT or .fleet)",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start etcd, the hub and the member control planes")
    up.add_argument(
        "--members",
        default="2",
        help="number of member clusters, or their names comma-separated (default 2)",
    )
    up.add_argument("--nodes", type=int, default=2, help="GPU nodes per pool (default 2)")
    up.add_argument(
        "--gpus-per-node", type=int, default=8, help="nvidia.com/gpu per node (default 8)"
    )
    up.add_argument("--gpu-model", default="H100", help="GPU model of member pools (default H100)")
    up.add_argument(
        "--pools",
        default="",
        help="explicit pools: 'hub=oslo:H100,warsaw:A100;paris=paris:H100:2:8' "
        "(cluster=module:MODEL[:NODES[:GPUS]])",
    )
    up.add_argument(
        "--modules",
        type=Path,
        default=None,
        help="derive clusters and node pools from AIFactoryModule manifests "
        "(file or directory, e.g. samples/) and register members in the hub",
    )
    sub.add_parser("down", help="stop every process of the fleet")
    sub.add_parser("status", help="show what runs and whether each apiserver is ready")
    for name in ("stop", "start"):
        p = sub.add_parser(name, help=f"{name} one cluster's kube-apiserver")
        p.add_argument("cluster")
    add = sub.add_parser(
        "add-nodes",
        help="add fake GPU nodes (kwok) for a module to a running cluster: the local fleet's "
        "stand-in for labelling GPU nodes aifactory.dev/module=NAME",
    )
    add.add_argument("cluster", help="cluster of the fleet, e.g. hub")
    add.add_argument("pool", help="MODULE:MODEL[:NODES[:GPUS]], e.g. lisbon:L4:2:8")
    sub.add_parser("bin-dir", help="print the directory holding the fleet's binaries")
    sub.add_parser("tools", help="build missing binaries into bin-dir")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "bin-dir":
            print(tools.bin_dir())
            return 0
        if args.cmd == "tools":
            tools.build()
            return 0
        if args.cmd == "up":
            members = (
                tuple(f"member-{i}" for i in range(1, int(args.members) + 1))
                if args.members.isdigit()
                else tuple(m.strip() for m in args.members.split(",") if m.strip())
            )
            pools = _parse_pools(args.pools, nodes=args.nodes, gpus=args.gpus_per_node)
            for cluster in (HUB, *members):
                if cluster not in pools and cluster != HUB:
                    pools[cluster] = (
                        NodePool(cluster, args.gpu_model, args.nodes, args.gpus_per_node),
                    )
            if args.modules is not None:
                from .topology import config_from_modules

                fleet = Fleet(config_from_modules(args.modules, root=args.root))
            else:
                fleet = Fleet(FleetConfig(root=args.root, members=members, pools=pools))
            took = fleet.up()
            if args.modules is not None:
                fleet.register_members()
            print(f"fleet up in {took:.1f}s: {', '.join(fleet.clusters)}")
            for cluster in fleet.clusters:
                print(
                    f"  {cluster:<12} {fleet.server(cluster)}  "
                    f"kubeconfig {fleet.kubeconfig(cluster)}"
                )
            return 0
        fleet = Fleet(FleetConfig(root=args.root))
        if args.cmd == "down":
            fleet.down()
            print("fleet down")
        elif args.cmd == "status":
            st = fleet.status()
            if not st:
                print(f"no fleet under {fleet.root}")
                return 1
            for name, row in st.items():
                print(f"{name:<12} " + "  ".join(f"{k}={v}" for k, v in row.items()))
        elif args.cmd == "add-nodes":
            (pool,) = _parse_pools(f"{args.cluster}={args.pool}", nodes=2, gpus=8)[args.cluster]
            names = fleet.add_nodes(args.cluster, pool)
            print(
                f"{args.cluster}: {len(names)} nodes Ready with {pool.gpus_per_node} "
                f"{pool.gpu_model} each, labelled aifactory.dev/module={pool.module}: "
                + ", ".join(names)
            )
        elif args.cmd == "stop":
            fleet.stop(args.cluster)
            print(f"{args.cluster}: kube-apiserver stopped")
        elif args.cmd == "start":
            fleet.start(args.cluster)
            print(f"{args.cluster}: kube-apiserver ready")
    except (FleetError, tools.ToolError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
