"""List-then-watch caches of one kind in one cluster (client-go's reflector + store, small).

A reconcile reads the cache, never the cluster: one watch per kind per cluster replaces a LIST
per deployment per cycle. Objects are turned into small frozen values by a `transform` as they
arrive, so the cache holds what the planner reads and not whole Pod manifests.

`synced` is True from the first complete LIST until the watch breaks; while it is False the
cache still holds the last state seen, and `stale_since` says from when. Callers decide what
stale means (the planner never deletes on the strength of a stale view).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from .errors import ClusterError
from .rest import ClusterClient

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a watch request stays open before the server ends it (then it is renewed).
WATCH_TIMEOUT_S = 240
#: Backoff between failed list/watch attempts: doubles up to the cap.
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 5.0


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


@dataclass(frozen=True, slots=True)
class InformerState:
    """What a reader needs to know about the cache's freshness."""

    synced: bool
    #: When the cache last went out of sync (None while synced or before the first list).
    stale_since: datetime | None
    #: The last error, as a safe message (None while healthy).
    error: str | None
    #: Bumped on every change to the store: cheap "did anything change" checks.
    revision: int


class Informer(Generic[T]):
    """One kind, one cluster: a thread that lists, then watches, and keeps `items` current.

    `transform(raw) -> value | None` runs once per object version (None drops the object);
    `on_change(key, old, new)` runs after each change (old/new None on add/delete), in the
    informer's thread: keep it quick (mark work, do not do it).
    """

    def __init__(
        self,
        client: ClusterClient,
        path: str,
        transform: Callable[[dict[str, Any]], T | None],
        *,
        query: list[tuple[str, str]] | None = None,
        on_change: Callable[[str, T | None, T | None], None] | None = None,
        name: str = "",
    ) -> None:
        self.client = client
        self.path = path
        self.query = list(query or [])
        self._transform = transform
        self._on_change = on_change
        self.name = name or f"{client.key}{path}"
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._stale_since: datetime | None = None
        self._error: str | None = None
        self._revision = 0
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- reading
    def items(self) -> dict[str, T]:
        """A copy of the cache (key -> value); safe to iterate while the informer runs."""
        with self._lock:
            return dict(self._items)

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    @property
    def state(self) -> InformerState:
        with self._lock:
            return InformerState(
                self._synced.is_set(), self._stale_since, self._error, self._revision
            )

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    # ----------------------------------------------------------------------------- running
    def start(self) -> Informer[T]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"informer {self.name}")
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _set(self, key: str, value: T | None) -> None:
        with self._lock:
            old = self._items.get(key)
            if value is None:
                if key not in self._items:
                    return
                del self._items[key]
            else:
                if old == value:
                    return
                self._items[key] = value
            self._revision += 1
        if self._on_change is not None:
            self._on_change(key, old, value)

    def _replace_all(self, raw_items: list[dict[str, Any]]) -> None:
        fresh: dict[str, T] = {}
        for raw in raw_items:
            value = self._safe_transform(raw)
            if value is not None:
                fresh[object_key(raw)] = value
        with self._lock:
            old = self._items
            self._items = fresh
            self._revision += 1
        if self._on_change is not None:
            for key in sorted(set(old) | set(fresh)):
                if old.get(key) != fresh.get(key):
                    self._on_change(key, old.get(key), fresh.get(key))

    def _safe_transform(self, raw: dict[str, Any]) -> T | None:
        try:
            return self._transform(raw)
        except Exception:  # one odd object must not stop the cache
            log.exception("informer %s: cannot read %s; ignored", self.name, object_key(raw))
            return None

    def _mark_stale(self, error: str) -> None:
        with self._lock:
            if self._synced.is_set() or self._stale_since is None:
                self._stale_since = datetime.now(UTC)
            self._error = error
            self._synced.clear()

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            try:
                items, rv = self.client.list_pages(self.path, self.query)
                self._replace_all(items)
                with self._lock:
                    self._stale_since = None
                    self._error = None
                    self._synced.set()
                backoff = BACKOFF_START_S
                while not self._stop.is_set():
                    rv = self._watch(rv)
            except ClusterError as err:
                if err.status == 410:  # resourceVersion too old: relist at once
                    continue
                self._mark_stale(err.message)
                log.info("informer %s: %s; retrying in %.1fs", self.name, err.message, backoff)
            except Exception as exc:  # never let the thread die
                self._mark_stale(type(exc).__name__)
                log.exception("informer %s failed; retrying in %.1fs", self.name, backoff)
            self._stop.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    def _watch(self, rv: str) -> str:
        started = time.monotonic()
        for event in self.client.watch(self.path, self.query, rv, WATCH_TIMEOUT_S):
            if self._stop.is_set():
                return rv
            obj = event.get("object") or {}
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            kind = event.get("type")
            if kind == "BOOKMARK":
                continue
            key = object_key(obj)
            if kind == "DELETED":
                self._set(key, None)
            else:
                self._set(key, self._safe_transform(obj))
        if time.monotonic() - started < 1.0:
            # a stream that ends at once (proxy, overload) must not become a busy loop
            self._stop.wait(1.0)
        return rv


__all__ = ["Informer", "InformerState", "object_key"]
