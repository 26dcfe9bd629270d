"""Writes to the hub (status, finalizers, routing ConfigMaps), coalesced, retried, in threads.

The placement loop never waits on the hub: it hands over what to write and moves on. Writes
for the same object are coalesced (only the newest status is sent); a write that fails is
retried with backoff until it succeeds or a newer one replaces it, so an apiserver outage of
any length delays status but loses nothing and stops nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aifactory.clusters import ClusterClient, ClusterError, apply

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 30.0

#: Order among writes ready at once (lower first): a finalizer guards the member objects being
#: created alongside it; a status carries the decision users wait for; routing ConfigMaps and
#: other applies follow (routing lists only Ready replicas, so it matters later anyway).
_PRIORITY = {"jsonpatch": 0, "status": 1, "patch": 1}
_LAST = 2


@dataclass
class _Job:
    key: str
    kind: str  # "status" | "patch" (merge) | "jsonpatch" | "apply"
    path: str
    body: dict[str, Any]
    attempts: int = 0
    not_before: float = 0.0


class HubWriter:
    """Coalescing write queue with a few worker threads.

    `on_done(key, ok, body)` is called after each attempt that ends a job (success, or a
    permanent failure such as 404/422); transient failures are retried.
    """

    def __init__(
        self,
        hub: ClusterClient,
        *,
        threads: int = 4,
        on_done: Callable[[str, bool, dict[str, Any]], None] | None = None,
    ) -> None:
        self.hub = hub
        self._on_done = on_done
        self._jobs: dict[str, _Job] = {}
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, name=f"hub-writer-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs) + len(self._busy)

    def submit(self, key: str, kind: str, path: str, body: dict[str, Any]) -> None:
        """Queue a write; replaces a queued (not yet running) one with the same key.

        `body` is the merge patch, the object to apply, or {"patch": [...]} (a JSON patch).
        """
        with self._cond:
            self._jobs[key] = _Job(key, kind, path, body)
            self._cond.notify()

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                ready = [
                    j for k, j in self._jobs.items() if k not in self._busy and j.not_before <= now
                ]
                if ready:
                    # by kind first, then the oldest (or earliest retry) within a kind
                    job = min(ready, key=lambda j: (_PRIORITY.get(j.kind, _LAST), j.not_before))
                    del self._jobs[job.key]
                    self._busy.add(job.key)
                    return job
                wait = min(
                    (j.not_before - now for j in self._jobs.values() if j.key not in self._busy),
                    default=1.0,
                )
                self._cond.wait(max(0.05, min(1.0, wait)))
            return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            ok: bool | None = None
            try:
                if job.kind == "apply":
                    apply(self.hub, job.body)
                elif job.kind == "jsonpatch":
                    self.hub.request(
                        "PATCH",
                        job.path,
                        body=job.body["patch"],
                        content_type="application/json-patch+json",
                        what=f"patch {job.key}",
                    )
                else:
                    self.hub.merge_patch(job.path, job.body, what=f"{job.kind} {job.key}")
                ok = True
            except ClusterError as err:
                if err.permanent or err.status == 409:
                    # gone, invalid, or a stale resourceVersion: the next plan writes again
                    log.info("write %s %s dropped: %s", job.kind, job.key, err.message)
                    ok = False
                else:
                    job.attempts += 1
                    job.not_before = time.monotonic() + min(BACKOFF_MAX_S, 0.5 * 2**job.attempts)
                    log.info(
                        "write %s %s failed (%s); retry %d",
                        job.kind,
                        job.key,
                        err.reason,
                        job.attempts,
                    )
            except Exception:
                log.exception("write %s %s failed", job.kind, job.key)
                ok = False
            with self._cond:
                self._busy.discard(job.key)
                if ok is None and job.key not in self._jobs:
                    self._jobs[job.key] = job  # retry unless a newer write replaced it
                self._cond.notify()
            if ok is not None and self._on_done is not None:
                self._on_done(job.key, ok, job.body)
