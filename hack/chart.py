"""Keep the Helm chart's values schema in step with the operator settings.

    python -m hack.chart [--check]

`config:` in values.yaml is written to the operator's settings file, so values.schema.json
lists exactly the operator settings (operator/aifactory/settings.py) the chart does not derive
itself, with their types and bounds; a typo in a value then fails `helm install`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aifactory.settings import OperatorSettings

SCHEMA = Path(__file__).resolve().parents[1] / "charts/aifactory-operator/values.schema.json"
#: Settings the chart sets from its own values (ports, webhook, leader election, identity).
CHART_MANAGED_SETTINGS = frozenset(
    {
        "metrics_port",
        "liveness_port",
        "namespace",
        "pod_name",
        "leader_election",
        "lease_name",
        "lease_duration",
        "lease_renew_deadline",
        "lease_retry_period",
        "webhook_enabled",
        "webhook_host",
        "webhook_port",
        "webhook_listen",
        "webhook_cert_file",
        "webhook_key_file",
        "webhook_ca_file",
        "webhook_managed",
        "webhook_service",
        "webhook_failure_policy",
        "webhook_timeout_seconds",
    }
)
_KEEP = (
    "type",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "description",
    "enum",
)


def config_schema() -> dict[str, Any]:
    """JSON schema of `config:`: one property per operator setting the chart does not set."""
    props = OperatorSettings.model_json_schema()["properties"]
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if name in CHART_MANAGED_SETTINGS:
            continue
        if "anyOf" in prop:  # Optional[X]: X or null
            prop = {**prop, "type": [b.get("type") for b in prop["anyOf"] if "type" in b]}
        out[name] = {k: v for k, v in prop.items() if k in _KEEP}
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Operator settings by name (operator/aifactory/settings.py) except "
        "those the chart derives.",
        "properties": out,
    }


def render() -> str:
    schema = json.loads(SCHEMA.read_text())
    schema["properties"]["config"] = config_schema()
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.chart", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report whether it is current")
    args = parser.parse_args(argv)
    text = render()
    if SCHEMA.read_text() == text:
        return 0
    if args.check:
        print(f"stale {SCHEMA}; regenerate with: python -m hack.chart", file=sys.stderr)
        return 1
    SCHEMA.write_text(text)
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
