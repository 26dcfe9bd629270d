"""Check manifests the way the apiserver will: types and unknown fields first, then the rules.

The apiserver decodes a request in two steps, and so does this module:

1. the JSON is matched against the CRD's structural schema (types, known fields). This is where
   `country: NO` fails, as `expected string, got &value.valueUnstructured{Value:false}`; here the
   same problem reads `expected string, got boolean false ... quote it: country: "NO"`, with the
   line;
2. the object is validated: bounds, enums, CEL rules. The pydantic models carry the same rules
   with the same messages (see `aifactory.api`).

The schema of step 1 is the generated CRD itself (`aifactory.api.crds.crd_for`), so this check
cannot drift from what is installed. Namespace and PriorityClass get a minimal check of their
own; other kinds are reported as skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError

from aifactory.api import GROUP_VERSION, RESOURCES, Resource
from aifactory.api.common import (
    LABEL_KEY_MESSAGE,
    LABEL_VALUE_MESSAGE,
    OBJECT_NAME_MESSAGE,
    is_label_key,
    is_label_value,
    is_object_name,
)
from aifactory.cli.kubeyaml import Document, Path

KINDS: dict[str, type[Resource]] = {model.KIND: model for model in RESOURCES}
_API_GROUP = GROUP_VERSION.split("/", 1)[0]
_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_METADATA_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
}
#: PriorityClass values above this are reserved for system classes.
MAX_USER_PRIORITY = 1_000_000_000
_PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
_PRIORITY_CLASS_FIELDS = frozenset(
    ("apiVersion", "kind", "metadata", "value", "globalDefault", "description", "preemptionPolicy")
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_LABEL_MESSAGE = (
    "must be a lowercase RFC 1123 label: at most 63 lower case alphanumeric characters or "
    "'-', starting and ending with an alphanumeric character"
)


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def field_path(loc: Iterable[int | str]) -> str:
    """A location as a manifest path: spec.capacity.gpus[0].count; map keys that are not plain
    names in brackets: metadata.labels[aifactory.dev/tier]."""
    out = ""
    for part in loc:
        if isinstance(part, int) or (out and not _FIELD_NAME.match(part)):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document, at a field."""

    path: Path
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = field_path(self.path) if self.path else ""
        if self.line is not None:
            where = f"{where} (line {self.line})".lstrip()
        return f"{where}: {self.message}" if where else self.message


@dataclass(slots=True)
class Checked:
    """The outcome for one document: the parsed object, or problems, or a reason it was skipped."""

    kind: str | None
    name: str | None
    obj: Any = None
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches_type(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        # A whole float (1e3) is an integer once in JSON, as the apiserver reads it.
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == expected


def _type_problem(value: Any, expected: str, path: Path, doc: Document) -> Problem:
    shown = json.dumps(value) if not isinstance(value, dict | list) else ""
    message = f"expected {expected}, got {_json_type(value)} {shown}".rstrip()
    origin = doc.origins.get(path)
    line = origin.line if origin else None
    if origin is not None and expected == "string" and path:
        message += (
            f": YAML 1.1, which kubectl reads, takes the unquoted {origin.text} as {shown}; "
            f"quote it: {origin.quoted(path[-1])}"
        )
    return Problem(path, message, line)


def check_schema(value: Any, schema: Mapping[str, Any], path: Path, doc: Document) -> list[Problem]:
    """Types and unknown fields of `value` against a structural schema, as the apiserver's
    decoder checks them. Nulls are left to the model (the apiserver treats them as unset)."""
    if value is None:
        return []
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [_type_problem(value, "integer or string", path, doc)]
        return []
    expected = schema.get("type")
    if expected is not None and not _matches_type(value, expected):
        return [_type_problem(value, expected, path, doc)]
    problems: list[Problem] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            here = (*path, key)
            if properties is not None and key in properties:
                problems += check_schema(child, properties[key], here, doc)
            elif isinstance(additional, Mapping):
                problems += check_schema(child, additional, here, doc)
            else:
                problems.append(Problem(here, f'unknown field "{field_path(here)}"'))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            problems += check_schema(item, schema["items"], (*path, i), doc)
    return problems


@cache
def crd_schema(kind: str) -> Mapping[str, Any]:
    """The openAPIV3Schema of one of our kinds, generated from the models (and cached)."""
    from aifactory.api.crds import crd_for

    crd = crd_for(KINDS[kind])
    schema: Mapping[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _check_string_map(value: Any, path: Path, doc: Document, *, keys: bool) -> list[Problem]:
    """labels (keys=True: label keys and values) or annotations (string values)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_type_problem(value, "object", path, doc)]
    problems = []
    for key, item in value.items():
        here = (*path, key)
        if not isinstance(item, str):
            problems.append(_type_problem(item, "string", here, doc))
            continue
        if keys and not is_label_key(key):
            problems.append(Problem(here, f"{LABEL_KEY_MESSAGE}; got key {key!r}"))
        if keys and not is_label_value(item):
            problems.append(Problem(here, f"{LABEL_VALUE_MESSAGE}; got {item!r}"))
    return problems


def check_metadata(
    raw: Any, doc: Document, *, name_rule: str = "subdomain", namespaced: bool | None = None
) -> list[Problem]:
    """What the apiserver checks of metadata before anything else: known fields, a valid name,
    label keys and values, string annotations."""
    path: Path = ("metadata",)
    if not isinstance(raw, dict):
        return [Problem(path, "Field required" if raw is None else "expected object")]
    problems = [
        Problem((*path, key), f'unknown field "metadata.{key}"')
        for key in raw
        if key not in _METADATA_FIELDS
    ]
    name = raw.get("name")
    if name is None and not raw.get("generateName"):
        problems.append(Problem((*path, "name"), "Field required"))
    elif name is not None and not isinstance(name, str):
        problems.append(_type_problem(name, "string", (*path, "name"), doc))
    elif isinstance(name, str):
        if name_rule == "label" and not _DNS_LABEL.match(name):
            problems.append(Problem((*path, "name"), f"{_DNS_LABEL_MESSAGE}; got {name!r}"))
        elif name_rule == "subdomain" and not is_object_name(name):
            problems.append(Problem((*path, "name"), f"{OBJECT_NAME_MESSAGE}; got {name!r}"))
    namespace = raw.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            problems.append(_type_problem(namespace, "string", (*path, "namespace"), doc))
        elif namespaced is False:
            problems.append(
                Problem((*path, "namespace"), "this kind is cluster-scoped: remove the namespace")
            )
    problems += _check_string_map(raw.get("labels"), (*path, "labels"), doc, keys=True)
    problems += _check_string_map(raw.get("annotations"), (*path, "annotations"), doc, keys=False)
    return problems


def _pydantic_problems(exc: ValidationError, doc: Document) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        origin = doc.origins.get(loc)
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append(Problem(loc, message, origin.line if origin else None))
    return out


def _without_repeats(schema: list[Problem], rules: list[Problem]) -> list[Problem]:
    """Schema problems, then the model's problems about fields the schema did not flag (a
    boolean country is one problem, not also "Input should be a valid string")."""
    flagged = [p.path for p in schema]
    return schema + [r for r in rules if not any(r.path[: len(f)] == f for f in flagged)]


def _check_resource(data: dict[str, Any], doc: Document, kind: str) -> Checked:
    model = KINDS[kind]
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    out = Checked(kind, name if isinstance(name, str) else None)
    schema = crd_schema(kind)
    problems = [Problem((key,), f'unknown field "{key}"') for key in data if key not in _TOP_LEVEL]
    problems += check_metadata(meta, doc, namespaced=model.NAMESPACED)
    for part in ("spec", "status"):
        if part in data:
            problems += check_schema(data[part], schema["properties"][part], (part,), doc)
    try:
        out.obj = model.from_manifest(data)
        rules: list[Problem] = []
    except ValidationError as exc:
        rules = _pydantic_problems(exc, doc)
    out.problems = _without_repeats(problems, rules)
    if out.problems:
        out.obj = None
    return out


def _check_namespace(data: dict[str, Any], doc: Document) -> Checked:
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    out = Checked("Namespace", name if isinstance(name, str) else None)
    out.problems = [
        Problem((key,), f'unknown field "{key}"') for key in data if key not in _TOP_LEVEL
    ]
    out.problems += check_metadata(meta, doc, name_rule="label", namespaced=False)
    if not out.problems:
        out.obj = {str(k): str(v) for k, v in ((meta or {}).get("labels") or {}).items()}
    return out


def _check_priority_class(data: dict[str, Any], doc: Document) -> Checked:
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    out = Checked("PriorityClass", name if isinstance(name, str) else None)
    problems = [
        Problem((key,), f'unknown field "{key}"')
        for key in data
        if key not in _PRIORITY_CLASS_FIELDS
    ]
    problems += check_metadata(meta, doc, namespaced=False)
    if isinstance(name, str) and name.startswith("system-"):
        problems.append(Problem(("metadata", "name"), "the system- prefix is reserved"))
    value = data.get("value")
    if value is None:
        problems.append(Problem(("value",), "Field required"))
    elif not _matches_type(value, "integer"):
        problems.append(_type_problem(value, "integer", ("value",), doc))
    elif not -(2**31) <= value <= MAX_USER_PRIORITY:
        problems.append(
            Problem(
                ("value",),
                f"must be at most {MAX_USER_PRIORITY:,} (higher values are "
                f"reserved for system classes); got {value}",
            )
        )
    for key, expected in (("globalDefault", "boolean"), ("description", "string")):
        if key in data and data[key] is not None and not _matches_type(data[key], expected):
            problems.append(_type_problem(data[key], expected, (key,), doc))
    policy = data.get("preemptionPolicy")
    if policy is not None and policy not in _PREEMPTION_POLICIES:
        problems.append(
            Problem(("preemptionPolicy",), f"must be PreemptLowerPriority or Never; got {policy!r}")
        )
    out.problems = problems
    if not problems:
        out.obj = data
    return out


_OTHER_KINDS: dict[tuple[str, str], Callable[[dict[str, Any], Document], Checked]] = {
    ("v1", "Namespace"): _check_namespace,
    ("scheduling.k8s.io/v1", "PriorityClass"): _check_priority_class,
}


def check_document(data: Any, doc: Document) -> Checked:
    """Check one document; `Checked.obj` is the parsed object when it is valid: a model of
    our kinds, a Namespace's labels, a PriorityClass as a dict."""
    if not isinstance(data, dict):
        return Checked(
            None, None, problems=[Problem((), f"expected a mapping, got {_json_type(data)}")]
        )
    kind, api_version = data.get("kind"), data.get("apiVersion")
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    name = name if isinstance(name, str) else None
    missing = [
        Problem((key,), "Field required") for key in ("apiVersion", "kind") if not data.get(key)
    ]
    if missing and isinstance(kind, str) and kind in KINDS and api_version is None:
        # Say everything at once: the missing apiVersion and what else is wrong.
        checked = _check_resource(data, doc, kind)
        checked.problems = missing + checked.problems
        checked.obj = None
        return checked
    if missing:
        return Checked(kind if isinstance(kind, str) else None, name, problems=missing)
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return Checked(
            None, None, problems=[Problem(("kind",), "apiVersion and kind must be strings")]
        )
    if api_version.split("/", 1)[0] == _API_GROUP:
        if kind not in KINDS:
            known = ", ".join(KINDS)
            return Checked(
                kind,
                name,
                problems=[
                    Problem(("kind",), f"{_API_GROUP} has no kind {kind!r} (known: {known})")
                ],
            )
        if api_version != GROUP_VERSION:
            return Checked(
                kind,
                name,
                problems=[
                    Problem(("apiVersion",), f"must be {GROUP_VERSION}; got {api_version!r}")
                ],
            )
        return _check_resource(data, doc, kind)
    checker = _OTHER_KINDS.get((api_version, kind))
    if checker is not None:
        return checker(data, doc)
    return Checked(
        kind,
        name,
        skipped=f"{api_version} {kind} is not checked by aifactoryctl",
    )
