"""Validating admission for InferenceDeployments: refuse what an Enforce policy can never allow.

The CRD schema and CEL rules catch malformed objects; this webhook catches well-formed ones
that break sovereignty as written: a pinned module an Enforce policy forbids, or a demand
region that no allowed module may serve under data residency. The message names the policy
and the rule, so the person applying the manifest knows whom to ask.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from aifactory.api import InferenceDeployment
from aifactory.placement.compliance import admission_problems
from aifactory.placement.from_api import module_view, policy_view, workload_view

from .runtime import DEPLOYMENTS, GROUP, SETTINGS, VERSION
from .world import from_kwargs


def validate_sovereignty(body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
    raw = dict(body)
    raw.setdefault("metadata", {}).setdefault("namespace", namespace)
    try:
        infd = InferenceDeployment.from_manifest(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise kopf.AdmissionError(f"{loc}: {err['msg']}", code=422) from None
    world = from_kwargs({**kwargs, "deployment_index": {}})
    workload = workload_view(infd, world.namespace_labels.get(infd.namespace))
    problems = admission_problems(
        workload, [module_view(m) for m in world.modules], [policy_view(p) for p in world.policies]
    )
    if problems:
        raise kopf.AdmissionError("; ".join(p.message for p in problems), code=403)


# kopf refuses to start with admission handlers but no admission server, so the handler is
# registered only when the webhook is enabled (chart value webhook.enabled).
if SETTINGS.webhook_enabled:
    kopf.on.validate(
        GROUP, VERSION, DEPLOYMENTS, id="sovereignty", operations=["CREATE", "UPDATE"]
    )(validate_sovereignty)
