"""A small REST client per cluster: raw paths, bounded request rate, backoff, one error family.

Raw paths keep one helper for every cluster, kind and verb the operator needs (CRDs included)
and skip the typed models' deserialisation, which dominates CPU at fleet scale. Every request
is rate limited per cluster (client-go's QPS/burst token bucket), 429 and 5xx answers are
retried a few times with backoff (honouring Retry-After), and every failure leaves this module
as a `ClusterError` (see errors.py): nothing above it catches urllib3 or ApiException.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from .errors import CLIENT_ERRORS, ClusterError, classify

#: (connect, read) seconds: an unreachable member must not stall a cycle for minutes.
REQUEST_TIMEOUT_SECONDS: tuple[float, float] = (3.0, 10.0)

#: Statuses worth one more try: throttled, or the server failed (not the request).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class TokenBucket:
    """client-go's flowcontrol.NewTokenBucketRateLimiter: `qps` per second, `burst` at once.

    `acquire` blocks until a token is free; thread-safe. qps <= 0 means unlimited.
    """

    def __init__(self, qps: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.qps
        if wait > 0:
            time.sleep(wait)
        return wait


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-cluster request limits (the operator settings memberQPS/memberBurst)."""

    qps: float = 50.0
    burst: int = 100
    retries: int = 3
    max_backoff_s: float = 5.0


class ClusterClient:
    """REST calls against one cluster. Thread-safe; one instance per cluster.

    `key` names the cluster in logs and metrics ("hub" or "secret:<ns>/<name>/<key>"), never
    its address or credentials.
    """

    def __init__(
        self,
        api: ApiClient,
        key: str,
        limits: Limits | None = None,
        *,
        on_request: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        self.api = api
        self.key = key
        self.limits = limits or Limits()
        self._bucket = TokenBucket(self.limits.qps, self.limits.burst)
        #: called after every request with (cluster key, verb, HTTP status or None)
        self._on_request = on_request

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def _raw(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: Any,
        content_type: str,
        timeout: tuple[float, float],
        stream: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        self._bucket.acquire()
        status: int | None = None
        try:
            resp = self.api.call_api(*serialized, _request_timeout=timeout)
            status = int(resp.status)
            if not stream:
                resp.read()  # type: ignore[no-untyped-call]
            if not 200 <= status < 300:
                if stream:
                    resp.read()  # type: ignore[no-untyped-call]
                raise ApiException.from_response(http_resp=resp, body=None, data=None)
            return resp
        finally:
            if self._on_request is not None:
                self._on_request(self.key, method, status)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
        timeout: tuple[float, float] = REQUEST_TIMEOUT_SECONDS,
    ) -> dict[str, Any]:
        """One call; JSON answer as a dict. Raises ClusterError (after retries on 429/5xx)."""
        what = what or f"{method} {path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._raw(method, path, query or [], body, content_type, timeout)
                data: dict[str, Any] = json.loads(resp.data) if resp.data else {}
                return data
            except CLIENT_ERRORS as exc:
                err = classify(exc, what=what)
                if err.status not in _RETRY_STATUSES or attempt > self.limits.retries:
                    raise err from None
                time.sleep(self._backoff(exc, attempt))

    def _backoff(self, exc: BaseException, attempt: int) -> float:
        retry_after = None
        if isinstance(exc, ApiException) and exc.headers:
            value = exc.headers.get("Retry-After")
            try:
                retry_after = float(value) if value is not None else None
            except ValueError:
                retry_after = None
        base = retry_after if retry_after is not None else 0.2 * 2 ** (attempt - 1)
        return float(min(self.limits.max_backoff_s, base))

    def get(self, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def apply(self, path: str, obj: dict[str, Any], field_manager: str, what: str) -> None:
        """Server-side apply (idempotent; conflicts forced: the operator owns these fields)."""
        self.request(
            "PATCH",
            path,
            query=[("fieldManager", field_manager), ("force", "true")],
            body=obj,
            content_type="application/apply-patch+yaml",
            what=what,
        )

    def merge_patch(self, path: str, patch: dict[str, Any], what: str) -> dict[str, Any]:
        return self.request(
            "PATCH", path, body=patch, content_type="application/merge-patch+json", what=what
        )

    def delete(self, path: str, what: str) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            self.request("DELETE", path, query=[("propagationPolicy", "Background")], what=what)
        except ClusterError as err:
            if err.status == 404:
                return False
            raise
        return True

    def list_pages(
        self, path: str, query: list[tuple[str, str]], *, limit: int = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection (paginated) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            q = [*query, ("limit", str(limit))]
            if cont:
                q.append(("continue", cont))
            data = self.request("GET", path, query=q, what=f"list {path}")
            items.extend(data.get("items") or [])
            meta = data.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                return items, str(meta.get("resourceVersion") or "")

    def watch(
        self, path: str, query: list[tuple[str, str]], resource_version: str, timeout_s: int
    ) -> Iterator[dict[str, Any]]:
        """Watch events from `resource_version` until the server closes the stream.

        Yields {"type": ..., "object": {...}} dicts, BOOKMARKs included. Raises ClusterError;
        status 410 means the resourceVersion is too old (relist).
        """
        q = [
            *query,
            ("watch", "1"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_s)),
        ]
        try:
            resp = self._raw(
                "GET",
                path,
                q,
                None,
                "application/json",
                (REQUEST_TIMEOUT_SECONDS[0], float(timeout_s) + 10.0),
                stream=True,
            )
        except CLIENT_ERRORS as exc:
            raise classify(exc, what=f"watch {path}") from None
        raw = resp.response  # the urllib3 response, read as a stream
        try:
            for line in iter_resp_lines(raw):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    code = int(obj.get("code") or 500)
                    raise ClusterError(
                        "WatchError",
                        f"watch {path}: {obj.get('reason')}: {obj.get('message')}",
                        status=code,
                    )
                yield event
        except CLIENT_ERRORS as exc:
            raise classify(exc, what=f"watch {path}") from None
        finally:
            raw.close()
            raw.release_conn()
