"""kopf handlers, registered on a registry by the entry point (nothing happens at import).

They only read and queue: indexes keep parsed hub objects in memory (kopf fills every index
before any other handler runs, so the first event marks the caches warm); event handlers queue
the deployments a change concerns for the placement loop; admission handlers read the indexes
and call the pure `admission.review`. Planning, member I/O and status writes happen in
`loop.py`, on the leader only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf
from pydantic import ValidationError

from aifactory import metrics
from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.clusters import ClusterError

from . import admission
from .fleet import Invalid
from .runtime import DEPLOYMENTS, GROUP, MODULES, POLICIES, VERSION, Runtime

log = logging.getLogger(__name__)

RuntimeFactory = Callable[[kopf.OperatorSettings, dict[str, Any]], Runtime]


def _parse(kind: type[Any], key: str, body: kopf.Body) -> Any:
    """The parsed model, or an `Invalid` marker naming what the models reject."""
    try:
        return kind.from_manifest(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        meta = body.get("metadata", {})
        return Invalid(
            kind=kind.__name__,
            key=key,
            message=f"{loc}: {err['msg']}",
            generation=meta.get("generation"),
            uid=meta.get("uid"),
            deleting=bool(meta.get("deletionTimestamp")),
        )


def register(
    registry: kopf.OperatorRegistry, make_runtime: RuntimeFactory, *, webhook: bool
) -> None:
    """Register every handler on `registry`. `make_runtime` builds the Runtime at startup;
    admission handlers only with `webhook` (kopf refuses them without a webhook server)."""

    # ------------------------------------------------------------------ indexes (hub caches)
    @kopf.index(GROUP, VERSION, MODULES, registry=registry, id="module_index")
    def module_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {name: _parse(AIFactoryModule, name, body)}

    @kopf.index(GROUP, VERSION, POLICIES, registry=registry, id="policy_index")
    def policy_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {name: _parse(SovereigntyPolicy, name, body)}

    @kopf.index(GROUP, VERSION, DEPLOYMENTS, registry=registry, id="deployment_index")
    def deployment_index(
        name: str, namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str, Any]:
        ref = f"{namespace}/{name}"
        return {ref: _parse(InferenceDeployment, ref, body)}

    @kopf.index("", "v1", "namespaces", registry=registry, id="namespace_index")
    def namespace_index(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.index(
        "scheduling.k8s.io", "v1", "priorityclasses", registry=registry, id="priority_class_index"
    )
    def priority_class_index(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {
            name: (
                int(body.get("value", 0) or 0),
                str(body.get("preemptionPolicy") or "PreemptLowerPriority"),
                bool(body.get("globalDefault", False)),
            )
        }

    from .routers import register as register_routers

    register_routers(registry)  # InferenceRouter index and event handler

    # ------------------------------------------------------------------ lifecycle
    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        rt = make_runtime(settings, kwargs)
        memo["runtime"] = rt
        from .loop import Loops

        loops = Loops(rt)
        loops.start()
        memo["loops"] = loops

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        rt: Runtime | None = memo.get("runtime")
        loops = memo.get("loops")
        if rt is not None:
            rt.stopping.set()
        if loops is not None:
            await loops.stop()
        if rt is not None:
            await asyncio.get_running_loop().run_in_executor(None, _close, rt)

    # ------------------------------------------------------------------ triggers
    @kopf.on.event("", "v1", "namespaces", registry=registry, id="namespace_event")
    async def namespace_event(name: str, memo: kopf.Memo, labels: kopf.Labels, **_: Any) -> None:
        rt: Runtime = memo["runtime"]
        if not rt.warm.is_set():
            # kopf runs no handler before every index has its initial listing: warm now
            rt.warm.set()
            log.info("hub caches are warm")
        key = ("ns", tuple(sorted(dict(labels).items())))
        if rt.seen_keys.get(f"ns/{name}") != key:
            rt.seen_keys[f"ns/{name}"] = key
            rt.mark(ref for ref in rt.decided if ref.startswith(f"{name}/"))

    @kopf.on.event(GROUP, VERSION, DEPLOYMENTS, registry=registry, id="deployment_event")
    async def deployment_event(
        name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, type: str, **_: Any
    ) -> None:
        rt: Runtime = memo["runtime"]
        ref = f"{namespace}/{name}"
        meta = body.get("metadata", {})
        if type == "DELETED":
            rt.mark([ref])
            return
        key = (
            meta.get("generation"),
            bool(meta.get("deletionTimestamp")),
            tuple(meta.get("finalizers") or ()),
            tuple(sorted((meta.get("labels") or {}).items())),
            meta.get("uid"),
        )
        if rt.seen_keys.get(ref) == key:
            return  # only status (ours) changed
        old = rt.seen_keys.get(ref)
        rt.seen_keys[ref] = key
        if old is None or old[0] != key[0]:
            rt.spec_seen[ref] = (meta.get("generation"), time.monotonic())
        rt.mark([ref])

    @kopf.on.event(GROUP, VERSION, MODULES, registry=registry, id="module_event")
    async def module_event(
        name: str, body: kopf.Body, memo: kopf.Memo, type: str, **_: Any
    ) -> None:
        rt: Runtime = memo["runtime"]
        status = body.get("status", {}) or {}
        ready = next(
            (
                c.get("status")
                for c in status.get("conditions", []) or []
                if c.get("type") == "Ready"
            ),
            None,
        )
        meta = body.get("metadata", {})
        free = {
            str(p.get("model")): int(p.get("gpusAllocatable") or 0)
            - int(p.get("gpusAllocated") or 0)
            for p in (status.get("capacity") or {}).get("gpus") or []
        }
        key = (
            type == "DELETED",
            meta.get("generation"),
            (meta.get("annotations") or {}).get("aifactory.dev/drain"),
            tuple(sorted((meta.get("labels") or {}).items())),
            ready,
            repr(status.get("effectiveEnergy")),
            tuple(sorted(free.items())),
        )
        old = rt.module_keys.get(name)
        if old == key:
            return
        rt.module_keys[name] = key
        # only fewer free GPUs: nothing waiting can fit now, only what runs there may care
        grew = (
            old is None
            or old[:-1] != key[:-1]
            or any(n > dict(old[-1]).get(model, 0) for model, n in free.items())
        )
        from .loop import affected_by_modules

        rt.mark(affected_by_modules(rt, rt.snapshot(), {name}, grew=grew))

    @kopf.on.event(GROUP, VERSION, POLICIES, registry=registry, id="policy_event")
    async def policy_event(
        name: str, body: kopf.Body, memo: kopf.Memo, type: str, **_: Any
    ) -> None:
        rt: Runtime = memo["runtime"]
        meta = body.get("metadata", {})
        key = (type == "DELETED", meta.get("generation"))
        if rt.seen_keys.get(f"policy/{name}") == key:
            return
        rt.seen_keys[f"policy/{name}"] = key
        rt.mark(d.ref for d in rt.snapshot().deployments)

    # ------------------------------------------------------------------ admission
    def validator(kind: str) -> Callable[..., Any]:
        async def validate(
            body: kopf.Body,
            old: kopf.Body | None,
            operation: str,
            memo: kopf.Memo,
            warnings: list[str],
            namespace: str | None = None,
            **_: Any,
        ) -> None:
            rt: Runtime = memo["runtime"]
            with metrics.observe("admission"):
                snapshot = rt.snapshot() if rt.warm.is_set() else None
                verdict = admission.review(
                    kind,
                    operation,
                    dict(body) if body is not None else None,
                    dict(old) if old is not None else None,
                    snapshot,
                    namespace=namespace,
                )
            warnings.extend(verdict.warnings)
            if not verdict.allowed:
                raise kopf.AdmissionError(verdict.message, code=verdict.code)

        return validate

    for kind, (plural, _policy) in admission.WEBHOOKS.items() if webhook else ():
        kopf.on.validate(
            GROUP,
            VERSION,
            plural,
            id=plural,
            operations=["CREATE", "UPDATE"],
            registry=registry,
        )(validator(kind))


def _close(rt: Runtime) -> None:
    if rt.settings.webhook_enabled and rt.settings.webhook_managed:
        from .startup import remove_managed_webhook

        try:
            remove_managed_webhook(rt.hub)
        except ClusterError as err:
            log.info("could not remove the webhook configuration: %s", err.reason)
    if rt.elector is not None:
        rt.elector.stop()
    if rt.accountability is not None:
        rt.accountability.stop()
    rt.writer.stop()
    rt.recorder.stop()
    rt.executor.shutdown()
    rt.members.close()
