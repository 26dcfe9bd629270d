"""The record keeper: appends PlacementRecords to the hub's chain, in its own thread.

The placement loop hands drafts over (`submit`, never blocks) and goes on. This thread reads the
chain's head from the hub once (the newest record: a restarted operator, or a new leader,
continues the same chain), then for each draft: the next sequence, the previous hash, the
record's hash and signature (`chain.seal`), one POST. Records are created under their
sequence's name, so a second writer that believes it appends the same sequence gets a 409
instead of forking the chain; the keeper then reads the head again and re-chains the draft.

An apiserver outage delays records and loses none while the queue has room (`queue_limit`:
beyond it the oldest draft is dropped and counted). Retention deletes the oldest records beyond
`max_count` or older than `max_age_seconds`, never the head.
"""

from __future__ import annotations

import base64
import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aifactory import metrics
from aifactory.audit.chain import Signer, Stored, expired, load_private_key, parse_time, seal
from aifactory.audit.chain import record_name as _name
from aifactory.audit.records import RecordDraft, complete
from aifactory.clusters import ClusterClient, ClusterError

log = logging.getLogger(__name__)

GROUP_VERSION = "aifactory.dev/v1alpha1"
RECORDS_PATH = "/apis/aifactory.dev/v1alpha1/placementrecords"
BACKOFF_MAX_S = 30.0


class RecordKeeper:
    """One thread, one queue, one chain head.

    `active()` says whether this replica may write (the leader); while it may not, drafts are
    dropped and the head forgotten, so a replica that leads again reads the head anew.
    `signing` is (namespace, name, key) of a Secret holding an Ed25519 key, or None.
    """

    def __init__(
        self,
        hub: ClusterClient,
        *,
        active: Callable[[], bool],
        max_count: int = 10_000,
        max_age_seconds: float = 90 * 86400.0,
        queue_limit: int = 10_000,
        signing: tuple[str, str, str] | None = None,
        prune_every_seconds: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hub = hub
        self._active = active
        self.max_count = max_count
        self.max_age_seconds = max_age_seconds
        self.queue_limit = queue_limit
        self.signing = signing
        self.prune_every_seconds = prune_every_seconds
        self._clock = clock
        self._queue: collections.deque[RecordDraft] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="record-keeper", daemon=True)
        #: (sequence, hash) of the newest record, None until read from the hub
        self.head: tuple[int, str] | None = None
        self._stored: list[Stored] = []
        self._signer: Signer | None = None
        self._next_prune = 0.0
        self._inflight: RecordDraft | None = None
        self.written = 0

    # ------------------------------------------------------------------ interface
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def submit(self, drafts: Iterable[RecordDraft]) -> None:
        """Queue drafts in decision order; returns at once."""
        with self._cond:
            for d in drafts:
                if len(self._queue) >= self.queue_limit:
                    self._queue.popleft()
                    metrics.RECORDS_DROPPED.labels("QueueFull").inc()
                self._queue.append(d)
            metrics.RECORDS_QUEUE.set(len(self._queue))
            self._cond.notify()

    def pending(self) -> int:
        """Drafts not written yet (the one being written included)."""
        with self._cond:
            return len(self._queue) + (self._inflight is not None)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every draft is written or dropped (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ the thread
    def _take(self) -> RecordDraft | None:
        with self._cond:
            while not self._stop:
                if self._inflight is not None:
                    return self._inflight
                if self._queue:
                    self._inflight = self._queue.popleft()
                    metrics.RECORDS_QUEUE.set(len(self._queue))
                    return self._inflight
                self._cond.wait(1.0)
                if not self._stop and not self._queue:
                    self._maybe_prune_locked()
            return None

    def _done(self) -> None:
        with self._cond:
            self._inflight = None

    def _maybe_prune_locked(self) -> None:
        # called with the lock held while idle: pruning itself runs without it
        if time.monotonic() >= self._next_prune and self.head is not None and self._active():
            self._cond.release()
            try:
                self.prune()
            except Exception:
                log.exception("records: retention failed")
            finally:
                self._cond.acquire()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            draft = self._take()
            if draft is None:
                return
            if not self._active():
                self._drop_all("NotLeader")
                self.head = None
                continue
            try:
                if self.head is None:
                    self.load_head()
                self._append(draft)
                backoff = 0.5
                self._done()
            except ClusterError as err:
                if err.status == 409:
                    log.info("records: sequence taken by another writer; reading the head again")
                    self.head = None
                    continue
                if err.permanent:
                    log.error("records: %s dropped: %s", draft.ref, err.message)
                    metrics.RECORDS_DROPPED.labels(err.reason).inc()
                    self._done()
                    if err.status == 404:  # no PlacementRecord CRD (yet): try again later
                        self.head = None
                        self._sleep(backoff)
                        backoff = min(BACKOFF_MAX_S, backoff * 2)
                    continue
                log.info("records: write failed (%s); retrying in %.1fs", err.reason, backoff)
                self._sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except Exception:
                log.exception("records: writing %s failed; dropped", draft.ref)
                metrics.RECORDS_DROPPED.labels("Error").inc()
                self._done()

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            if not self._stop:
                self._cond.wait(seconds)

    def _drop_all(self, reason: str) -> None:
        with self._cond:
            n = len(self._queue) + (self._inflight is not None)
            self._queue.clear()
            self._inflight = None
            metrics.RECORDS_QUEUE.set(0)
        if n:
            metrics.RECORDS_DROPPED.labels(reason).inc(n)
            log.info("records: %d drafts dropped (%s)", n, reason)

    # ------------------------------------------------------------------ hub I/O
    def load_head(self) -> None:
        """Read every record's sequence (the chain's head and what retention may delete) and
        the signing key."""
        items, _ = self.hub.list_pages(RECORDS_PATH, [])
        stored = []
        head: tuple[int, str] = (0, "")
        for obj in items:
            spec = obj.get("spec") or {}
            seq = spec.get("sequence")
            if not isinstance(seq, int):
                continue
            created = parse_time(str((obj.get("metadata") or {}).get("creationTimestamp", "")))
            stored.append(Stored(seq, obj["metadata"]["name"], created or self._clock()))
            if seq > head[0]:
                head = (seq, str(spec.get("hash", "")))
        self._stored = sorted(stored, key=lambda s: s.sequence)
        self._signer = self._load_signer()
        metrics.RECORDS_SIGNED.set(1 if self._signer else 0)
        self.head = head
        log.info(
            "records: chain head is sequence %d%s",
            head[0],
            f" (signed with key {self._signer.key_id})" if self._signer else "",
        )

    def _load_signer(self) -> Signer | None:
        if self.signing is None:
            return None
        namespace, name, key = self.signing
        try:
            secret = self.hub.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
            raw = (secret.get("data") or {}).get(key)
            if raw is None:
                raise ValueError(f"Secret {namespace}/{name} has no key {key!r}")
            return Signer(load_private_key(base64.b64decode(raw)))
        except (ClusterError, ValueError) as err:
            message = err.message if isinstance(err, ClusterError) else str(err)
            log.error("records: signing key unavailable, writing unsigned records: %s", message)
            return None

    def _append(self, draft: RecordDraft) -> None:
        assert self.head is not None
        started = time.perf_counter()
        seq = self.head[0] + 1
        spec = seal(complete(draft.body), seq, self.head[1], self._signer)
        name = _name(seq)
        obj: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": "PlacementRecord",
            "metadata": {
                "name": name,
                "labels": {"app.kubernetes.io/managed-by": "aifactory-operator", **draft.labels},
            },
            "spec": spec,
        }
        created = self.hub.request("POST", RECORDS_PATH, body=obj, what=f"create {name}")
        self.head = (seq, spec["hash"])
        stamp = parse_time(str((created.get("metadata") or {}).get("creationTimestamp", "")))
        self._stored.append(Stored(seq, name, stamp or self._clock()))
        self.written += 1
        metrics.RECORDS_WRITTEN.inc()
        metrics.RECORD_APPEND_SECONDS.observe(time.perf_counter() - started)

    def prune(self) -> int:
        """Delete what retention no longer keeps; returns how many went."""
        self._next_prune = time.monotonic() + self.prune_every_seconds
        gone = expired(
            self._stored,
            self._clock(),
            max_count=self.max_count,
            max_age_seconds=self.max_age_seconds,
        )
        done = 0
        for s in gone:
            try:
                self.hub.delete(f"{RECORDS_PATH}/{s.name}", what=f"delete {s.name}")
            except ClusterError as err:
                log.info("records: retention could not delete %s: %s", s.name, err.reason)
                break
            done += 1
        if done:
            removed = {s.name for s in gone[:done]}
            self._stored = [s for s in self._stored if s.name not in removed]
            metrics.RECORDS_PRUNED.inc(done)
        return done


__all__ = ["RECORDS_PATH", "RecordKeeper"]
