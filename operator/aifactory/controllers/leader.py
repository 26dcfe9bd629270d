"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Every replica keeps its caches warm and answers admission; only the leader plans and writes.
The leader renews the Lease every retryPeriod; if it cannot renew within renewDeadline it steps
down on its own (before another replica may take over at leaseDuration), so two replicas never
act at once. A standby takes over once the Lease has not been renewed for leaseDuration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aifactory.clusters import ClusterClient, ClusterError

log = logging.getLogger(__name__)


def _micro(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaderElector:
    """Runs in its own thread; `is_leader` is what the loops check before acting."""

    def __init__(
        self,
        hub: ClusterClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.hub = hub
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_change = on_change
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._last_renew = 0.0
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    @property
    def is_leader(self) -> bool:
        # a leader that could not renew for renewDeadline is no leader, even before the
        # thread notices: never act on a Lease another replica may already hold
        if not self._leader.is_set():
            return False
        return time.monotonic() - self._last_renew < self.renew_deadline

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Step down and release the Lease so a standby takes over at once."""
        self._stop.set()
        if self._leader.is_set():
            self._set(False)
            try:
                lease = self.hub.get(self.path)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") == self.identity:
                    self.hub.merge_patch(
                        self.path,
                        {
                            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                            "spec": {"holderIdentity": None, "leaseDurationSeconds": 1},
                        },
                        what="release Lease",
                    )
            except ClusterError:
                pass

    def _set(self, leader: bool) -> None:
        was = self._leader.is_set()
        if leader:
            self._leader.set()
        else:
            self._leader.clear()
        if was != leader:
            log.info("leader election: %s", "became the leader" if leader else "not the leader")
            if self._on_change is not None:
                self._on_change(leader)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self._try()
            except ClusterError as err:
                log.info("leader election: %s", err.message)
                ok = False
            if ok:
                self._last_renew = time.monotonic()
                self._set(True)
            elif (
                self._leader.is_set() and time.monotonic() - self._last_renew >= self.renew_deadline
            ):
                self._set(False)
            self._stop.wait(self.retry_period)

    def _try(self) -> bool:
        now = datetime.now(UTC)
        spec_new = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "renewTime": _micro(now),
        }
        try:
            lease = self.hub.get(self.path)
        except ClusterError as err:
            if err.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec_new, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            try:
                self.hub.request("POST", self.collection, body=body, what="create Lease")
            except ClusterError as exc:
                if exc.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renew = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = renew is None or (now - renew).total_seconds() > duration
        if holder and holder != self.identity and not expired:
            return False
        patch: dict[str, Any] = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": dict(spec_new),
        }
        if holder != self.identity:
            patch["spec"]["acquireTime"] = _micro(now)
            patch["spec"]["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        try:
            self.hub.merge_patch(self.path, patch, what="renew Lease")
        except ClusterError as exc:
            if exc.status == 409:  # someone else wrote it first
                return False
            raise
        return True
