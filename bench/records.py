"""What decision records cost: on the placement path, in the record keeper, and per append.

    python bench/records.py                    # in-process: placement with and without capture
    python bench/records.py --hub KUBECONFIG   # also N real appends to that hub's chain

1. Placement path. The placement loop only *captures* a record (a dict: cells, cost terms,
   module facts, digests) for each placement change; hashing, signing and writing happen in
   the record keeper's thread. This places D deployments on a synthetic fleet of M modules with
   `place_against` (what the operator's cycle calls), once alone and once with the capture the
   cycle adds, and reports deployments placed per second both ways (median of several runs).
2. Record keeper, per record, without I/O: canonical JSON + SHA-256 (`chain.seal`), unsigned
   and Ed25519-signed.
3. With `--hub`: N records appended through the real RecordKeeper to the hub the kubeconfig
   names (use a scratch fleet: they join its chain, as deployment `bench/records`), and the
   time until all are written: ms per append and appends per second.

The operator-level check of issue #14 ("placed-per-second with records on and off within
10%") is `AIFACTORY_RECORDS_ENABLED=false` against `true` in a scale run of the operator (the
setting only turns the capture and the keeper off); section 1 measures the same difference
in-process, where nothing else varies. Timing assertions belong here, never in tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aifactory.audit.chain import Signer, seal
from aifactory.audit.records import (
    Change,
    ModuleFacts,
    build,
)
from aifactory.controllers.accountability import cost_terms, fleet_digest
from aifactory.placement import FleetState
from aifactory.placement.assignment import place_against
from aifactory.placement.synthetic import random_fleet, random_workloads


def _cells(decision) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    out: dict[tuple[str, str], int] = {}
    for a in decision.assignments:
        if a.regions:
            for r, k in a.regions.items():
                out[(r, a.module)] = out.get((r, a.module), 0) + k
        else:
            out[("", a.module)] = a.replicas
    return out


def placement(modules: int, deployments: int, runs: int) -> None:
    fleet_views = random_fleet(modules, seed=1)
    workloads = random_workloads(deployments, seed=2)
    now = datetime.now(UTC)

    def once(capture: bool) -> tuple[float, float]:
        """(seconds for the whole run, seconds of it spent capturing records)."""
        fleet = FleetState(fleet_views)
        captured = 0.0
        started = time.perf_counter()
        for wl in workloads:
            decision, ws = place_against(fleet, wl, (), fleet.pool_free, fleet.power_free_w)
            if not capture:
                continue
            t = time.perf_counter()
            after = _cells(decision)
            facts = []
            for n in {m for _, m in after}:
                i = fleet.index[n]
                facts.append(
                    ModuleFacts(
                        n,
                        fleet.modules[i].country,
                        True,
                        float(fleet.carbon[i]),
                        float(fleet.renewable[i]),
                        float(fleet.reliability[i]),
                    )
                )
            build(
                namespace="bench",
                name=wl.key,
                uid=None,
                generation=1,
                data_classification="internal",
                before={},
                after=after,
                change=Change(),
                now=now,
                cost_after=cost_terms(ws, fleet, after),
                cost_before=cost_terms(ws, fleet, {}),
                modules=facts,
                modules_digest=fleet_digest(fleet),
                demand={r.name: float(r.replicas) for r in wl.regions},
            )
            captured += time.perf_counter() - t
        return time.perf_counter() - started, captured

    once(True)  # warm up
    off: list[float] = []
    on: list[float] = []
    capture_s: list[float] = []
    for _ in range(runs):  # interleaved, so a busy moment hits both alike
        off.append(once(False)[0])
        total, captured = once(True)
        on.append(total)
        capture_s.append(captured)
    off_rate = deployments / statistics.median(off)
    on_rate = deployments / statistics.median(on)
    share = statistics.median(c / t for c, t in zip(capture_s, on, strict=True))
    print(f"1. placement path: {deployments} deployments on {modules} modules, median of {runs}")
    print(f"   records off: {off_rate:8.1f} placed/s")
    print(f"   records on:  {on_rate:8.1f} placed/s  ({on_rate / off_rate - 1:+.1%})")
    per = statistics.median(capture_s) / deployments * 1e6
    print(f"   capture: {per:.0f} us per placement change, {share:.1%} of the placement time")


def keeper(records: int) -> None:
    body = build(
        namespace="bench",
        name="records",
        uid="u",
        generation=1,
        data_classification="restricted",
        before={("eu-west", "paris"): 3, ("eu-central", "paris"): 5},
        after={("eu-west", "oslo"): 3, ("eu-central", "paris"): 5},
        change=Change(moves=(("eu-west", "paris", "oslo", 3),), rebalanced=True),
        now=datetime.now(UTC),
        modules_digest="0" * 64,
        demand={"eu-west": 300.0, "eu-central": 500.0},
    ).body
    signer = Signer(Ed25519PrivateKey.generate())
    for label, s in (("unsigned", None), ("signed  ", signer)):
        prev = ""
        started = time.perf_counter()
        for i in range(1, records + 1):
            prev = seal(body, i, prev, s)["hash"]
        per = (time.perf_counter() - started) / records * 1e6
        print(f"2. keeper, {label}: {per:.0f} us per record (canonical JSON, SHA-256, link)")


def hub_appends(kubeconfig: str, records: int) -> None:
    from kubernetes import config

    from aifactory.audit.keeper import RecordKeeper
    from aifactory.clusters import ClusterClient, Limits

    api = config.new_client_from_config(config_file=kubeconfig)
    hub = ClusterClient(api, "hub", Limits(qps=1000, burst=1000))
    k = RecordKeeper(hub, active=lambda: True, max_count=10**9, max_age_seconds=0)
    drafts = [
        build(
            namespace="bench",
            name="records",
            uid=None,
            generation=i,
            data_classification="internal",
            before={("", "m"): i},
            after={("", "m"): i + 1},
            change=Change(),
            now=datetime.now(UTC),
        )
        for i in range(records)
    ]
    k.load_head()
    k.start()
    started = time.perf_counter()
    k.submit(drafts)
    if not k.flush(timeout=600):
        print("3. hub: not all records were written within 600 s")
        return
    took = time.perf_counter() - started
    k.stop()
    print(
        f"3. hub appends: {records} records in {took:.2f}s: {took / records * 1000:.1f} ms per "
        f"append, {records / took:.0f} appends/s (one writer, one POST each)"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", type=int, default=1000)
    p.add_argument("--deployments", type=int, default=500)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--hub", metavar="KUBECONFIG", help="also append records to this hub")
    p.add_argument("--hub-records", type=int, default=200)
    args = p.parse_args()
    placement(args.modules, args.deployments, args.runs)
    keeper(args.records)
    if args.hub:
        hub_appends(args.hub, args.hub_records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
