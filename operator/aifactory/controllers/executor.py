"""The executor: carries out member actions, one small queue per cluster. The only writer to
member clusters.

A slow or hung member slows only what touches it: each cluster has its own few worker threads,
so its requests wait on its own queue while the others proceed. Every failure arrives here as a
`ClusterError` (the clients map them at the boundary) and is recorded per (deployment, module)
for the planner to report: a member's 422 is `MemberRejected` with the member's message, not
"unreachable". An action already in flight for a (deployment, module) is not queued again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aifactory import metrics
from aifactory.api import InferenceDeployment
from aifactory.clusters import (
    ClusterError,
    MemberTarget,
    apply,
    delete_named,
    ensure_namespace,
    member_object_name,
    render,
    scale,
)

from .planner import ApplyError, MemberAction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """One member action for one deployment ("ns/name"); `infd` is needed to apply only
    (deleting an orphan whose InferenceDeployment is gone has none)."""

    ref: str
    target: MemberTarget
    action: MemberAction
    infd: InferenceDeployment | None = None
    gpu_models: tuple[str, ...] = ()
    create_namespace: bool = False
    #: the hub's PriorityClass the Deployment names, copied into the member first so the
    #: member's kube-scheduler orders and preempts pods the way placement did
    priority_class: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.ref.split("/", 1)[1]


class MemberExecutor:
    """Per-cluster worker pools; `on_done(ref)` is called after each job (to re-plan)."""

    def __init__(
        self,
        *,
        threads_per_cluster: int = 4,
        on_done: Callable[[str], None] | None = None,
        advisory: bool = False,
    ) -> None:
        self.threads_per_cluster = threads_per_cluster
        self._on_done = on_done
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()
        #: (deployment, module) -> replicas the newest job asked the member for (0: delete)
        self._asked: dict[tuple[str, str], int] = {}
        self._errors: dict[tuple[str, str], ApplyError] = {}
        #: (cluster, PriorityClass name) -> what was applied there
        self._classes: dict[tuple[str, str], str] = {}
        #: (cluster, namespace) known to exist (applied once per process)
        self._namespaces: set[tuple[str, str]] = set()
        self.advisory = advisory

    def _pool(self, key: str) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = ThreadPoolExecutor(
                    max_workers=self.threads_per_cluster, thread_name_prefix=f"member {key}"
                )
                self._pools[key] = pool
            return pool

    def in_flight(self, ref: str) -> set[str]:
        with self._lock:
            return {m for r, m in self._in_flight if r == ref}

    def asked(self, ref: str) -> dict[str, int]:
        """Module -> replicas this process last asked that member for. Our own write reaches
        our informers some time after it is sent: until then the member's Deployment still
        shows what it had, and counting those replicas as Ready would let a handover elsewhere
        look complete while they are being deleted."""
        with self._lock:
            return {m: n for (r, m), n in self._asked.items() if r == ref}

    def busy(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def errors(self, ref: str) -> dict[str, ApplyError]:
        with self._lock:
            return {m: e for (r, m), e in self._errors.items() if r == ref}

    def forget(self, ref: str) -> None:
        with self._lock:
            for key in [k for k in self._errors if k[0] == ref]:
                del self._errors[key]
            for key in [k for k in self._asked if k[0] == ref]:
                del self._asked[key]

    def submit(self, job: Job) -> bool:
        """Queue a job unless one for the same (deployment, module) is in flight."""
        key = (job.ref, job.action.module)
        with self._lock:
            if key in self._in_flight:
                return False
            self._in_flight.add(key)
        if self.advisory:  # advisory mode: decide and report, never touch a member
            with self._lock:
                self._in_flight.discard(key)
            return True
        with self._lock:
            self._asked[key] = 0 if job.action.kind == "delete" else job.action.replicas
        self._pool(job.target.cluster_key).submit(self._run, job)
        return True

    def _run(self, job: Job) -> None:
        key = (job.ref, job.action.module)
        try:
            self._execute(job)
        except ClusterError as err:
            if err.status == 404 and job.action.kind == "apply":
                # the namespace went away under us (deleted in the member): create it next time
                with self._lock:
                    self._namespaces.discard((job.target.cluster_key, job.namespace))
                err = ClusterError(err.reason, err.message, status=404, permanent=False)
            metrics.MEMBER_ERRORS.labels(job.target.cluster_key, err.reason).inc()
            with self._lock:
                self._errors[key] = ApplyError(
                    reason=err.reason,
                    message=err.message,
                    permanent=err.permanent,
                    generation=job.infd.metadata.generation if job.infd else None,
                    at=datetime.now(UTC),
                )
            log.warning(
                "%s %s on %s failed: %s",
                job.action.kind,
                job.ref,
                job.action.module,
                err.message,
            )
        except Exception:
            log.exception("%s %s on %s failed", job.action.kind, job.ref, job.action.module)
        else:
            with self._lock:
                self._errors.pop(key, None)
        finally:
            with self._lock:
                self._in_flight.discard(key)
            if self._on_done is not None:
                self._on_done(job.ref)

    def _ensure_priority_class(self, job: Job) -> None:
        pc = job.priority_class
        if pc is None:
            return
        key = (job.target.cluster_key, str(pc["metadata"]["name"]))
        digest = json.dumps(pc, sort_keys=True)
        with self._lock:
            if self._classes.get(key) == digest:
                return
        apply(job.target.client, pc)
        with self._lock:
            self._classes[key] = digest

    def _execute(self, job: Job) -> None:
        infd, target, action = job.infd, job.target, job.action
        client = target.client
        ns = job.namespace
        name = member_object_name(job.name, action.module)
        if action.kind == "delete":
            delete_named(client, ns, name)
        elif action.kind == "scale":
            scale(client, ns, name, action.replicas)
        elif action.kind == "apply":
            assert infd is not None, "apply needs the InferenceDeployment"
            self._ensure_priority_class(job)
            key = (target.cluster_key, ns)
            with self._lock:
                known = key in self._namespaces
            if job.create_namespace and not known:
                ensure_namespace(client, ns)
                with self._lock:
                    self._namespaces.add(key)
            for obj in render(
                infd,
                action.module,
                action.replicas,
                target.node_selector,
                job.gpu_models,
                priority_class=getattr(infd.spec, "priority_class_name", None),
            ):
                apply(client, obj)
        else:  # pragma: no cover - the planner only emits the three kinds
            raise ValueError(f"unknown member action {action.kind}")

    def shutdown(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for p in pools:
            p.shutdown(wait=False, cancel_futures=True)
