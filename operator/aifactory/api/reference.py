"""Generate the CRD field reference (docs/reference.md) from the same schemas as the CRDs.

    python -m aifactory.api.reference [--out docs/reference.md] [--check]

Every row comes from the structural schema `aifactory.api.crds` builds from the pydantic
models, so the reference, `kubectl explain` and the apiserver's validation say the same thing;
a test fails when docs/reference.md drifts from the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aifactory.api import RESOURCES
from aifactory.api.common import API_GROUP, API_VERSION, Resource
from aifactory.api.crds import crd_for

REGENERATE_COMMAND = "python -m aifactory.api.reference --out docs/reference.md"


def _type(node: dict[str, Any]) -> str:
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    return kind


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    if "minimum" in node:
        op = ">" if node.get("exclusiveMinimum") else ">="
        parts.append(f"{op} {node['minimum']}")
    if "maximum" in node:
        op = "<" if node.get("exclusiveMaximum") else "<="
        parts.append(f"{op} {node['maximum']}")
    if "maxItems" in node:
        parts.append(f"at most {node['maxItems']} items")
    if "minProperties" in node:
        parts.append(f"at least {node['minProperties']} entries")
    if "maxProperties" in node:
        parts.append(f"at most {node['maxProperties']} entries")
    if node.get("x-kubernetes-list-type") == "set":
        parts.append("no duplicates")
    if node.get("x-kubernetes-int-or-string"):
        parts.append("integer or string")
    if "minLength" in node and node["minLength"] > 0:
        parts.append(f"at least {node['minLength']} characters")
    if "maxLength" in node:
        parts.append(f"at most {node['maxLength']} characters")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations", []):
        if rule.get("message"):
            parts.append(f"rule: {rule['message']}")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(node: dict[str, Any], path: str) -> Iterator[tuple[str, str, bool, str]]:
    """(path, type, required, description) for every field below `node`, depth first."""
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}"
        description = child.get("description", "")
        extra = _constraints(child)
        if extra:
            description = f"{description} ({extra})" if description else extra
        yield here, _type(child), name in required, description
        target = child
        suffix = ""
        if child.get("type") == "array" and "items" in child:
            target, suffix = child["items"], "[]"
        elif isinstance(child.get("additionalProperties"), dict):
            target, suffix = child["additionalProperties"], "{}"
        if target is not child and _constraints(target) and "properties" not in target:
            yield f"{here}{suffix}", _type(target), False, _constraints(target)
        if "properties" in target:
            yield from _rows(target, here + suffix)


def _section(model: type[Resource]) -> str:
    crd = crd_for(model)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    names = crd["spec"]["names"]
    lines = [
        f"## {model.KIND}",
        "",
        f"`{API_GROUP}/{API_VERSION}`, {crd['spec']['scope'].lower()}-scoped, "
        f"short names {', '.join(f'`{s}`' for s in names['shortNames'])}, "
        f"`kubectl get {names['plural']}`.",
        "",
        schema.get("description", ""),
        "",
        "`kubectl get` columns: "
        + ", ".join(f"{c['name']} (`{c['jsonPath']}`)" for c in version["additionalPrinterColumns"])
        + ".",
        "",
    ]
    for part in ("spec", "status"):
        node = schema["properties"].get(part)
        if node is None:  # a kind without status (PlacementRecord)
            continue
        lines += [f"### {model.KIND}.{part}", ""]
        if node.get("description"):
            lines += [_cell(node["description"]), ""]
        lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        for path, type_, req, description in _rows(node, part):
            lines.append(
                f"| `{path}` | `{type_}` | {'yes' if req else ''} | {_cell(description)} |"
            )
        lines.append("")
    return "\n".join(lines)


def render() -> str:
    """The whole reference page."""
    head = [
        "# API reference: aifactory.dev/v1alpha1",
        "",
        f"<!-- Generated from aifactory.api by `{REGENERATE_COMMAND}`. Do not edit. -->",
        "",
        "Generated from the pydantic models in `operator/aifactory/api/`, the same source as "
        "the CRDs. `kubectl explain <kind>.<field>` shows the same descriptions. Rules marked "
        '"rule:" are CEL validations the apiserver enforces.',
        "",
        "| kind | scope | short name |",
        "| --- | --- | --- |",
    ]
    for model in RESOURCES:
        scope = "Namespaced" if model.NAMESPACED else "Cluster"
        head.append(
            f"| [{model.KIND}](#{model.KIND.lower()}) | {scope} | "
            + ", ".join(f"`{s}`" for s in model.SHORT_NAMES)
            + " |"
        )
    head.append("")
    return "\n".join(head + [_section(m) for m in RESOURCES]).rstrip() + "\n"


def generate(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    render: Callable[[], str],
    regenerate_command: str,
) -> int:
    """The command line of a generated document: print it, `--out FILE` write it (only when
    it changed), `--check` exit 1 when FILE is stale. Shared by the API and settings
    references."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    parser.add_argument("--check", action="store_true", help="only report whether --out is current")
    args = parser.parse_args(argv)
    text = render()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    current = args.out.read_text() if args.out.exists() else None
    if current == text:
        return 0
    if args.check:
        print(f"stale {args.out}; regenerate with: {regenerate_command}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return generate(
        argv,
        prog="python -m aifactory.api.reference",
        description="Generate docs/reference.md.",
        render=render,
        regenerate_command=REGENERATE_COMMAND,
    )


if __name__ == "__main__":
    raise SystemExit(main())
