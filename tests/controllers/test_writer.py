"""The hub writer's order: what users wait for goes first."""

from __future__ import annotations

from typing import Any, cast

from aifactory.clusters import ClusterClient
from aifactory.controllers.writer import HubWriter


def _order(writer: HubWriter, n: int) -> list[str]:
    out = []
    for _ in range(n):
        job = writer._next()
        assert job is not None
        out.append(job.key)
    return out


def test_finalizers_then_statuses_then_routing_config_maps_each_in_arrival_order() -> None:
    writer = HubWriter(cast(ClusterClient, object()), threads=1)  # not started: no requests
    body: dict[str, Any] = {}
    for i in range(3):
        writer.submit(f"ns/d{i}#routing", "apply", "", body)
        writer.submit(f"ns/d{i}", "status", "/status", body)
        writer.submit(f"ns/d{i}#finalizer", "jsonpatch", "/", body)
    writer.submit("module/paris", "status", "/status", body)
    assert _order(writer, 10) == [
        "ns/d0#finalizer",
        "ns/d1#finalizer",
        "ns/d2#finalizer",
        "ns/d0",
        "ns/d1",
        "ns/d2",
        "module/paris",
        "ns/d0#routing",
        "ns/d1#routing",
        "ns/d2#routing",
    ]


def test_a_newer_write_replaces_a_queued_one_in_place() -> None:
    writer = HubWriter(cast(ClusterClient, object()), threads=1)
    writer.submit("ns/a", "status", "/status", {"status": {"v": 1}})
    writer.submit("ns/b", "status", "/status", {"status": {"v": 1}})
    writer.submit("ns/a", "status", "/status", {"status": {"v": 2}})
    first = writer._next()
    assert first is not None and first.key == "ns/a" and first.body == {"status": {"v": 2}}
    assert writer.pending() == 2  # a in flight, b queued
