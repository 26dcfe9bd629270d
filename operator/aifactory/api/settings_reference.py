"""Generate the operator settings reference (docs/settings.md) from `OperatorSettings`.

    python -m aifactory.api.settings_reference [--out docs/settings.md] [--check]

Every row comes from the pydantic model in `aifactory.settings` (name, type, default, bounds,
description), so the page says what `load_settings` accepts; `CHART_VALUES` says which Helm
value sets the settings the chart derives itself. Tests fail when docs/settings.md drifts from
the model, or `CHART_VALUES` from the chart's templates and values schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aifactory.api.reference import _cell, generate
from aifactory.settings import ENV_PREFIX, OperatorSettings

REGENERATE_COMMAND = "python -m aifactory.api.settings_reference --out docs/settings.md"

#: Settings the Helm chart (charts/aifactory-operator) sets from its own values, as
#: environment variables of the operator container: the value that sets each, or None when
#: the chart leaves it at its default. `config:` cannot set any of them (values.schema.json).
#: Every other setting is `config.<name>`.
CHART_VALUES: Mapping[str, str | None] = {
    "metrics_port": "`metrics.port`",
    "liveness_port": "`liveness.port`",
    "namespace": "the release namespace",
    "pod_name": "the Pod's name (downward API)",
    "leader_election": "`highAvailability.leaderElection` (null: on when `replicaCount` > 1)",
    "lease_name": "the release's full name",
    "lease_duration": "`highAvailability.leaseDurationSeconds`",
    "lease_renew_deadline": "`highAvailability.renewDeadlineSeconds`",
    "lease_retry_period": "`highAvailability.retryPeriodSeconds`",
    "webhook_enabled": "`webhook.enabled`",
    "webhook_host": "`webhook.host` (empty: the webhook Service's DNS name)",
    "webhook_port": "`webhook.port`",
    "webhook_listen": "always `0.0.0.0`",
    "webhook_cert_file": "`/etc/aifactory/webhook/tls.crt`, mounted from the Secret of "
    "`webhook.certificate` (with `webhook.mode=chart`, or a named Secret)",
    "webhook_key_file": "`/etc/aifactory/webhook/tls.key`, as `webhook_cert_file`",
    "webhook_ca_file": None,
    "webhook_managed": "`webhook.mode` (`operator`: true)",
    "webhook_service": None,
    "webhook_failure_policy": "`webhook.failurePolicy`",
    "webhook_timeout_seconds": "`webhook.timeoutSeconds`",
}

#: What else the chart does with a `config:` setting.
CHART_NOTES: Mapping[str, str] = {
    "shutdown_grace_seconds": "also sets the Pod's `terminationGracePeriodSeconds` "
    "(this, rounded up, + 10)",
}

#: Rules between settings (`OperatorSettings._consistent`); tests check each is enforced.
CROSS_FIELD_RULES: tuple[str, ...] = (
    "`heartbeat_timeout` >= `heartbeat_interval`.",
    "With `leader_election`: `lease_retry_period` < `lease_renew_deadline` < `lease_duration`.",
    "`webhook_cert_file` and `webhook_key_file` are set together or not at all.",
)


def env_var(name: str) -> str:
    """The environment variable of a setting (what `load_settings` reads)."""
    return f"{ENV_PREFIX}{name.upper()}"


def helm_value(name: str) -> str:
    """How the Helm chart sets a setting, in words."""
    if name in CHART_VALUES:
        value = CHART_VALUES[name]
        return value if value is not None else "not set by the chart"
    note = CHART_NOTES.get(name)
    return f"`config.{name}`" + (f"; {note}" if note else "")


def _branches(prop: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """The schema's non-null branches, and whether null (unset) is allowed."""
    if "anyOf" in prop:
        branches = [b for b in prop["anyOf"] if b.get("type") != "null"]
        return branches, len(branches) < len(prop["anyOf"])
    return [prop], False


def _type(prop: Mapping[str, Any]) -> str:
    branches, _ = _branches(prop)
    names = []
    for b in branches:
        kind = str(b.get("type", "string"))
        if b.get("format") == "path":
            kind = "string (file path)"
        names.append(kind)
    return " or ".join(dict.fromkeys(names))


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _constraints(prop: Mapping[str, Any]) -> str:
    branches, _ = _branches(prop)
    parts: list[str] = []
    for b in branches:
        if "enum" in b:
            parts.append("one of " + ", ".join(f"`{v}`" for v in b["enum"]))
        if "exclusiveMinimum" in b:
            parts.append(f"> {_number(b['exclusiveMinimum'])}")
        if "minimum" in b:
            parts.append(f">= {_number(b['minimum'])}")
        if "exclusiveMaximum" in b:
            parts.append(f"< {_number(b['exclusiveMaximum'])}")
        if "maximum" in b:
            parts.append(f"<= {_number(b['maximum'])}")
        if "pattern" in b:
            parts.append(f"pattern `{b['pattern']}`")
    return "; ".join(parts)


def render() -> str:
    """The whole settings page."""
    props = OperatorSettings.model_json_schema()["properties"]
    lines = [
        "# Operator settings",
        "",
        f"<!-- Generated from aifactory.settings by `{REGENERATE_COMMAND}` (`make crds`). "
        "Do not edit. -->",
        "",
        "Every setting of the operator process (`OperatorSettings` in "
        "`operator/aifactory/settings.py`). Each is read, in this order of precedence, from:",
        "",
        f"1. the environment variable `{ENV_PREFIX}<SETTING>` (the name in upper case, e.g. "
        f"`{env_var('heartbeat_interval')}=5`);",
        f"2. the YAML file named by `{ENV_PREFIX}CONFIG`, keyed by setting name "
        "(`heartbeat_interval: 5`);",
        "3. the default below.",
        "",
        "The settings are validated once at start-up: an unknown key in the file, a value of "
        "the wrong type or out of bounds stops the operator (exit code 2) with a message naming "
        "each bad setting and its variable, e.g. "
        f"`heartbeat_timeout ({env_var('heartbeat_timeout')}): ...`. Environment variables "
        "with the prefix that name no setting are ignored. Values in seconds accept fractions.",
        "",
        "With the Helm chart, `config:` in the values is written to a ConfigMap that the "
        f"operator reads as its `{ENV_PREFIX}CONFIG` file; changing it rolls the Pods. The "
        'chart sets the settings in the "Helm value" column that do not start with `config.` '
        "itself, as environment variables (the lease settings only with leader election on, the "
        "other webhook settings only with `webhook.enabled`); `values.schema.json` rejects them "
        "under `config:`. `extraEnv` adds environment variables, which win over `config:`.",
        "",
        "Rules between settings, checked at start-up too:",
        "",
        *[f"- {rule}" for rule in CROSS_FIELD_RULES],
        "",
        "| setting | environment variable | Helm value | type | default | constraints "
        "| description |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, prop in props.items():
        lines.append(
            f"| `{name}` | `{env_var(name)}` | {_cell(helm_value(name))} | {_type(prop)} | "
            f"{_default(prop.get('default'))} | {_cell(_constraints(prop))} | "
            f"{_cell(prop.get('description', ''))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return generate(
        argv,
        prog="python -m aifactory.api.settings_reference",
        description="Generate docs/settings.md.",
        render=render,
        regenerate_command=REGENERATE_COMMAND,
    )


if __name__ == "__main__":
    raise SystemExit(main())
