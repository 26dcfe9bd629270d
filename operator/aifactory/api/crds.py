"""Generate the CustomResourceDefinitions from the pydantic models.

    python -m aifactory.api.crds [--out crds/] [--check]
    python -m aifactory.api.crds --out charts/aifactory-operator/crds [--check]

The apiserver wants *structural* OpenAPI v3 schemas: every node typed, no `$ref`, no `anyOf`
with null, no `additionalProperties: false`. Pydantic emits JSON Schema 2020-12, so this module
inlines every reference, turns `Optional[X]` into "X, not required", and keeps descriptions
(they are `kubectl explain` text), enums, bounds and the `x-kubernetes-*` extensions the models
declare. Keeping the CRDs generated means the apiserver and `aifactoryctl` can never disagree on
what a valid object is.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from aifactory.api import RESOURCES
from aifactory.api.common import API_GROUP, API_VERSION, Resource

CATEGORIES = ["aifactory"]
REGENERATE_COMMAND = "python -m aifactory.api.crds --out crds/"
CHART_CRDS_DIR = "charts/aifactory-operator/crds"
CHART_REGENERATE_COMMAND = f"python -m aifactory.api.crds --out {CHART_CRDS_DIR}"

_HEADER = f"# Generated from aifactory.api by `{REGENERATE_COMMAND}`. Do not edit.\n"


def _condition_column(name: str, type_: str, *, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{type_}")].status',
    }
    if priority:
        column["priority"] = priority
    return column


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


#: What `kubectl get` shows, per kind. Values come from status summary fields the controllers
#: keep up to date, because printer columns can only read one JSONPath each.
PRINTER_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "AIFactoryModule": [
        {"name": "Country", "type": "string", "jsonPath": ".spec.location.country"},
        {"name": "Renewable", "type": "number", "jsonPath": ".status.energy.renewableShare"},
        {"name": "Carbon", "type": "number", "jsonPath": ".status.energy.carbonIntensity"},
        {"name": "GPUs Free", "type": "integer", "jsonPath": ".status.gpusFree"},
        {"name": "GPUs Total", "type": "integer", "jsonPath": ".status.gpusTotal"},
        _condition_column("Ready", "Ready"),
        {"name": "Schedulable", "type": "boolean", "jsonPath": ".spec.schedulable", "priority": 1},
        {
            "name": "Reliability",
            "type": "number",
            "jsonPath": ".status.reliability.readyFraction",
            "priority": 1,
        },
        _age(),
    ],
    "InferenceDeployment": [
        {"name": "Replicas", "type": "string", "jsonPath": ".status.replicasSummary"},
        {"name": "Modules", "type": "integer", "jsonPath": ".status.moduleCount"},
        _condition_column("Ready", "Ready"),
        _condition_column("Compliant", "Compliant"),
        _condition_column("Placed", "Placed", priority=1),
        {
            "name": "Classification",
            "type": "string",
            "jsonPath": ".spec.dataClassification",
            "priority": 1,
        },
        _age(),
    ],
    "InferenceRouter": [
        {"name": "Tiers", "type": "string", "jsonPath": ".status.tierSummary"},
        _condition_column("Ready", "Ready"),
        {"name": "Mean RTT", "type": "number", "jsonPath": ".status.meanRttMs"},
        {"name": "gCO2e/1k", "type": "number", "jsonPath": ".status.gramsPer1000Requests"},
        _age(),
    ],
    "SovereigntyPolicy": [
        {"name": "Jurisdictions", "type": "string", "jsonPath": ".spec.allowedJurisdictions"},
        {"name": "Enforcement", "type": "string", "jsonPath": ".spec.enforcement"},
        {"name": "Bound", "type": "integer", "jsonPath": ".status.boundCount"},
        _age(),
    ],
    "PlacementRecord": [
        {"name": "Seq", "type": "integer", "jsonPath": ".spec.sequence"},
        {"name": "Namespace", "type": "string", "jsonPath": ".spec.deployment.namespace"},
        {"name": "Deployment", "type": "string", "jsonPath": ".spec.deployment.name"},
        {"name": "Reason", "type": "string", "jsonPath": ".spec.reason"},
        {"name": "Decided", "type": "date", "jsonPath": ".spec.time"},
        {"name": "Message", "type": "string", "jsonPath": ".spec.message", "priority": 1},
        _age(),
    ],
}

# Keys copied as they are, in this order, after the ones handled specially.
_PASSTHROUGH = (
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_DROPPED = {"title", "$defs", "examples"}


class SchemaError(ValueError):
    """The pydantic schema uses a construct a structural CRD schema cannot express."""


def structural(node: dict[str, Any], defs: dict[str, Any], *, path: str = "") -> dict[str, Any]:
    """A structural OpenAPI v3 schema for one JSON-schema node of a pydantic model."""
    node = _resolve(node, defs, path)
    out: dict[str, Any] = {}
    if "description" in node:
        out["description"] = node["description"]

    additional = node.get("additionalProperties")
    if node.get("x-kubernetes-int-or-string"):
        pass  # typeless by definition: an integer or a string (e.g. a resource.Quantity)
    elif "properties" in node or node.get("type") == "object":
        out["type"] = "object"
    elif "type" in node:
        out["type"] = node["type"]
    elif "enum" in node:
        out["type"] = "string"
    else:
        raise SchemaError(f"{path or '<root>'}: untyped schema node {node!r}")

    for key in _PASSTHROUGH:
        if key not in node:
            continue
        value = node[key]
        if key == "default" and (value is None or isinstance(value, dict | list)):
            # Only scalar defaults: defaulting objects or lists server-side would fight
            # rules such as "fixed excludes min/max" and hide what the user wrote.
            continue
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
            continue
        if key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
            continue
        out[key] = value

    if node.get("uniqueItems"):
        raise SchemaError(f"{path}: uniqueItems is not allowed; use x-kubernetes-list-type")

    if "properties" in node:
        out["properties"] = {
            name: structural(child, defs, path=f"{path}.{name}")
            for name, child in node["properties"].items()
        }
        if node.get("required"):
            out["required"] = list(node["required"])
    if "items" in node:
        out["items"] = structural(node["items"], defs, path=f"{path}[]")
    if out.get("type") == "object" and "properties" not in node:
        if additional is True or additional == {}:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(additional, dict):
            out["additionalProperties"] = structural(additional, defs, path=f"{path}{{}}")
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True

    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        elif key == "const":
            out["enum"] = [value]  # Literal["x"]: a one-value enum, which structural allows
        elif (
            key not in _PASSTHROUGH
            and key not in _DROPPED
            and key
            not in {
                "description",
                "type",
                "properties",
                "required",
                "items",
                "additionalProperties",
                "uniqueItems",
            }
        ):
            raise SchemaError(f"{path}: unsupported JSON schema keyword {key!r}")
    if out.get("type") == "number":
        _fractional_bounds(out)
    return out


def _fractional_bounds(out: dict[str, Any]) -> None:
    """Repeat a fractional minimum or maximum of a number as a CEL rule.

    The apiserver's OpenAPI validator compares an integer value with the bound converted to an
    integer, so `throughputPerReplica: 0` passes `minimum: 0.01` (0 >= int(0.01)). CEL compares
    numbers as doubles.
    """
    rules = []
    for key, op, word in (("minimum", ">", "greater"), ("maximum", "<", "less")):
        bound = out.get(key)
        if bound is None or float(bound).is_integer():
            continue
        exclusive = out.get(f"exclusive{key.capitalize()}") is True
        cel_op = op if exclusive else f"{op}="
        text = f"{word} than {bound}" if exclusive else f"{word} than or equal to {bound}"
        rules.append({"rule": f"self {cel_op} {bound!r}", "message": f"should be {text}"})
    if rules:
        out.setdefault("x-kubernetes-validations", [])
        out["x-kubernetes-validations"] = [*rules, *out["x-kubernetes-validations"]]


def _resolve(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Inline `$ref` and collapse `anyOf [X, null]` into X; sibling keys win over the target."""
    while True:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**copy.deepcopy(defs[name]), **siblings}
            continue
        if "anyOf" in node:
            branches = [b for b in node["anyOf"] if b != {"type": "null"}]
            if len(branches) != 1:
                raise SchemaError(f"{path}: only Optional[X] unions are supported")
            siblings = {k: v for k, v in node.items() if k != "anyOf"}
            branch = _resolve(branches[0], defs, path)
            # The field's own description beats the referenced model's docstring.
            node = {**branch, **siblings}
            continue
        return node


def _field_schema(model: type[Resource], field: str) -> dict[str, Any]:
    full = model.model_json_schema(by_alias=True, mode="validation")
    defs = full.get("$defs", {})
    return structural(full["properties"][field], defs, path=f".{field}")


def crd_for(model: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition of one top-level kind."""
    kind = model.KIND
    doc = inspect.cleandoc(model.__doc__ or kind)
    # a kind without status (PlacementRecord: written once) has no status subresource
    has_status = "status" in model.model_fields
    schema = {
        "description": doc,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion of this object: aifactory.dev/v1alpha1.",
                "type": "string",
            },
            "kind": {"description": f"Kind of this object: {kind}.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": _field_schema(model, "spec"),
            **({"status": _field_schema(model, "status")} if has_status else {}),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{model.PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "aifactory"},
        },
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": model.PLURAL,
                "singular": kind.lower(),
                "shortNames": list(model.SHORT_NAMES),
                "categories": list(getattr(model, "CATEGORIES", CATEGORIES)),
            },
            "scope": "Namespaced" if model.NAMESPACED else "Cluster",
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if has_status else {}),
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS[kind]),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors, multi-line descriptions as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=10_000, default_flow_style=False)


def crd_filename(model: type[Resource]) -> str:
    return f"{API_GROUP}_{model.PLURAL}.yaml"


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD, exactly as `crds/` (and the chart's crds/) hold
    them."""
    return {crd_filename(m): _HEADER + to_yaml(crd_for(m)) for m in RESOURCES}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aifactory.api.crds", description="Generate the aifactory.dev CRDs."
    )
    parser.add_argument("--out", type=Path, default=Path("crds"), help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="only report whether the files are up to date"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    stale = []
    for name, text in render_crds().items():
        target = out / name
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        stale.append(target)
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    for target in stale:
        print(f"{'stale' if args.check else 'wrote'} {target}")
    if args.check and stale:
        print(f"regenerate with: python -m aifactory.api.crds --out {out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
