"""Kubernetes Events for our objects, aggregated like client-go's recorder. Posted in a thread.

An Event with the same object, reason and message as one posted recently increments its count
instead of creating a new object; the same Event within `quiet_s` is not posted again at all,
so a persistent problem re-planned every few seconds does not flood etcd. Messages never hold
credentials (the planner's messages name modules, policies and member answers only).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aifactory.clusters import ClusterClient, ClusterError

log = logging.getLogger(__name__)

COMPONENT = "aifactory-operator"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    uid: str | None

    @property
    def event_namespace(self) -> str:
        return self.namespace or "default"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Queue Events from any thread; one thread posts them to the hub."""

    def __init__(self, hub: ClusterClient, *, quiet_s: float = 300.0, host: str = "") -> None:
        self.hub = hub
        self.quiet_s = quiet_s
        self.host = host
        self._queue: queue.Queue[tuple[ObjectRef, str, str, str] | None] = queue.Queue(10_000)
        #: (uid, reason, message) -> (event name, count, posted at monotonic)
        self._seen: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
        self.enabled = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """Queue one Event (dropped with a log line when the queue is full)."""
        if not self.enabled:
            return
        try:
            self._queue.put_nowait((ref, type_, reason, message[:1024]))
        except queue.Full:
            log.warning("event queue full; dropped %s %s", reason, ref.name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            ref, type_, reason, message = item
            try:
                self._post(ref, type_, reason, message)
            except ClusterError as err:
                log.info("event %s for %s not posted: %s", reason, ref.name, err.reason)
            except Exception:
                log.exception("event %s for %s not posted", reason, ref.name)

    def _post(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        key = (ref.uid or f"{ref.namespace}/{ref.name}", reason, message)
        seen = self._seen.get(key)
        now = time.monotonic()
        ns = ref.event_namespace
        if seen is not None:
            name, count, at = seen
            if now - at < self.quiet_s:
                return
            try:
                self.hub.merge_patch(
                    f"/api/v1/namespaces/{ns}/events/{name}",
                    {"count": count + 1, "lastTimestamp": _now()},
                    what="update Event",
                )
                self._seen[key] = (name, count + 1, now)
                return
            except ClusterError as err:
                if err.status != 404:
                    raise
        name = f"{ref.name}.{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                **({"namespace": ref.namespace} if ref.namespace else {}),
                **({"uid": ref.uid} if ref.uid else {}),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "source": {"component": COMPONENT, **({"host": self.host} if self.host else {})},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.host or COMPONENT,
        }
        self.hub.request("POST", f"/api/v1/namespaces/{ns}/events", body=body, what="create Event")
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = (name, 1, now)
