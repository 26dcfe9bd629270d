"""Validating admission: refuse what the schema cannot catch and Enforce policies forbid. Pure.

The CRD schema and CEL rules catch malformed objects first; this webhook repeats the models'
own validation (what CEL cannot say, such as ISO 3166-2 subdivisions) and refuses
InferenceDeployments that break sovereignty as written: a pinned module an Enforce policy
forbids, or a demand region no allowed module may serve under data residency. Every refusal
names the policy, the rule and the field.

Safety rules, whatever the object:

* deletes, finalizer and metadata-only changes and status updates are never refused (the
  webhook configuration does not even send them: see `webhook_configuration`); a spec-less
  change is allowed here too, in case an older configuration still sends it;
* the answer comes from memory only (the hub caches), never from member I/O, so a hung member
  cannot slow admission down;
* a replica whose caches are not warm does not guess: it refuses with a retryable message
  (and its readiness probe keeps it out of the webhook Service meanwhile);
* a policy that does not exist is a warning and a condition on the deployment, not a refusal
  (GitOps tools may apply the deployment before the policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.api.common import GROUP_VERSION
from aifactory.cli.manifests import field_path
from aifactory.placement.compliance import admission_problems
from aifactory.placement.from_api import module_view, policy_view, workload_view
from aifactory.placement.priority import UnknownPriorityClassError

from .fleet import HubSnapshot, without_priority_class

GROUP = "aifactory.dev"
VERSION = "v1alpha1"

#: kind -> (plural, webhook handler id and URL path, failure policy)
WEBHOOKS: dict[str, tuple[str, str]] = {
    "InferenceDeployment": ("inferencedeployments", "Fail"),
    "AIFactoryModule": ("aifactorymodules", "Ignore"),
    "SovereigntyPolicy": ("sovereigntypolicies", "Ignore"),
}

#: CEL match conditions: never intercept deletion, finalizer/metadata-only or status changes.
MATCH_CONDITIONS: list[dict[str, str]] = [
    {"name": "not-being-deleted", "expression": "!has(object.metadata.deletionTimestamp)"},
    {
        "name": "spec-changed",
        "expression": "request.operation == 'CREATE' || !has(oldObject.spec) || "
        "!has(object.spec) || object.spec != oldObject.spec",
    },
]

NOT_WARM = (
    "the aifactory operator replica that answered has not loaded the fleet yet (hub caches "
    "not synced); retry in a few seconds"
)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


_MODELS: dict[str, Any] = {
    "InferenceDeployment": InferenceDeployment,
    "AIFactoryModule": AIFactoryModule,
    "SovereigntyPolicy": SovereigntyPolicy,
}


def _spec_unchanged(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> bool:
    return new is not None and old is not None and new.get("spec") == old.get("spec")


def review(
    kind: str,
    operation: str,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    snapshot: HubSnapshot | None,
    *,
    namespace: str | None = None,
) -> Verdict:
    """The admission answer for one request (pure). `snapshot` None = caches not warm."""
    if operation not in ("CREATE", "UPDATE") or new is None:
        return Verdict(True)
    if (new.get("metadata") or {}).get("deletionTimestamp"):
        return Verdict(True)
    if operation == "UPDATE" and _spec_unchanged(new, old):
        return Verdict(True)  # finalizers, labels, annotations: never ours to refuse
    model = _MODELS.get(kind)
    if model is None:
        return Verdict(True)
    raw = dict(new)
    meta = dict(raw.get("metadata") or {})
    if namespace and not meta.get("namespace") and kind == "InferenceDeployment":
        meta["namespace"] = namespace
    raw["metadata"] = meta
    try:
        obj = model.from_manifest(raw)
    except ValidationError as exc:
        errors = [
            f"{field_path(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()[:5]
        ]
        return Verdict(False, 422, "; ".join(errors))
    if kind != "InferenceDeployment":
        return Verdict(True)
    if snapshot is None:
        return Verdict(False, 503, NOT_WARM)
    infd: InferenceDeployment = obj
    warnings: tuple[str, ...] = ()
    try:
        workload = workload_view(
            infd,
            snapshot.namespace_labels.get(infd.namespace),
            priority_classes=snapshot.priority_views(),
        )
    except UnknownPriorityClassError as exc:
        # as with a policy: GitOps may apply the class after the deployment; placement waits
        warnings = (
            f"spec.priorityClassName: {exc}: nothing is placed until it exists (condition "
            "Placed=False, reason PriorityClassNotFound)",
        )
        workload = workload_view(
            without_priority_class(infd), snapshot.namespace_labels.get(infd.namespace)
        )
    problems = admission_problems(
        workload,
        [module_view(m) for m in snapshot.modules],
        [policy_view(p) for p in snapshot.policies],
    )
    missing = [p for p in problems if "does not exist" in p.message]
    refusals = [p for p in problems if p not in missing]
    warnings += tuple(
        f"{p.message}: nothing is placed until it exists (condition Placed=False, "
        "reason PolicyNotFound)"
        for p in missing
    )
    if refusals:
        return Verdict(False, 403, "; ".join(p.message for p in refusals), warnings)
    return Verdict(True, warnings=warnings)


def webhook_configuration(
    name: str,
    client_config: Mapping[str, Any],
    *,
    timeout_seconds: int = 5,
    failure_policy: str | None = None,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration the operator manages (the chart renders the same).

    `client_config` is {"url": ...} or {"service": {...}} plus "caBundle"; the handler id is
    appended to the URL path per kind. `failure_policy` overrides the per-kind default.
    """
    webhooks = []
    for kind, (plural, default_policy) in WEBHOOKS.items():
        cfg: dict[str, Any] = {k: v for k, v in client_config.items() if k != "service"}
        if "url" in cfg:
            cfg["url"] = f"{str(cfg['url']).rstrip('/')}/{plural}"
        if "service" in client_config:
            svc = dict(client_config["service"])
            svc["path"] = f"{str(svc.get('path', '')).rstrip('/')}/{plural}"
            cfg["service"] = svc
        webhooks.append(
            {
                "name": f"{plural}.validating.{GROUP}",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": failure_policy
                if (failure_policy and kind == "InferenceDeployment")
                else default_policy,
                "matchPolicy": "Equivalent",
                "timeoutSeconds": timeout_seconds,
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "resources": [plural],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "*",
                    }
                ],
                "matchConditions": MATCH_CONDITIONS,
                "clientConfig": cfg,
            }
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "aifactory-operator"},
        },
        "webhooks": webhooks,
    }


__all__ = [
    "GROUP_VERSION",
    "MATCH_CONDITIONS",
    "NOT_WARM",
    "WEBHOOKS",
    "Verdict",
    "review",
    "webhook_configuration",
]
