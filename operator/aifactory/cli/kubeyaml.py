"""Read YAML the way kubectl does, and remember where each value came from.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which parses with go-yaml v2: YAML 1.1
plain scalars. So an unquoted `NO` (Norway), `no`, `n`, `y`, `yes`, `on` or `off` becomes a
boolean, `0123` an octal number, `.inf` a float JSON cannot carry, while `12:30` stays a string
(PyYAML would read sexagesimal 750). This module applies go-yaml v2's resolution rules
(`resolve.go`) to the nodes PyYAML composes, so `aifactoryctl` sees exactly the JSON the
apiserver will see, and it keeps the source text and line of every plain scalar that did not
become a string: a checker that finds a boolean where a string belongs can then say
`quote it: country: "NO"`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

#: A position in a document: keys and list indices from the root.
Path = tuple[str | int, ...]

_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_NULL = {"", "~", "null", "Null", "NULL"}
_NAN = {".nan", ".NaN", ".NAN"}
_INF = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}
_NEG_INF = {"-.inf", "-.Inf", "-.INF"}
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?$")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
_MERGE_TAG = "tag:yaml.org,2002:merge"


class KubeYAMLError(ValueError):
    """The text cannot become the JSON kubectl would send; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a plain (unquoted) scalar that did not become a string came from."""

    text: str
    line: int

    def quoted(self, key: str | int) -> str:
        """The line as it should be written: `country: "NO"`."""
        escaped = self.text.replace("\\", "\\\\").replace('"', '\\"')
        return f'{key}: "{escaped}"' if isinstance(key, str) else f'- "{escaped}"'


@dataclass(slots=True)
class Document:
    """One YAML document as JSON-ready data, with the origins of its non-string scalars."""

    data: Any
    #: First line of the document in its file (1-based).
    line: int
    origins: dict[Path, Origin] = field(default_factory=dict)


def _go_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint(text, 0, 64) after removing '_', as go-yaml v2 does."""
    plain = text.replace("_", "")
    sign, digits = (plain[0], plain[1:]) if plain[:1] in "+-" else ("", plain)
    if not digits:
        return None
    lowered = digits.lower()
    try:
        if lowered.startswith("0x"):
            value = int(digits[2:], 16)
        elif lowered.startswith("0o"):
            value = int(digits[2:], 8)
        elif lowered.startswith("0b"):
            value = int(digits[2:], 2)
        elif len(digits) > 1 and digits.startswith("0"):
            value = int(digits[1:], 8)
        elif digits.isdigit():
            value = int(digits, 10)
        else:
            return None
    except ValueError:
        return None
    if sign == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1] or (sign != "-" and value <= _UINT64_MAX):
        return value
    return None


def resolve_plain(text: str) -> Any:
    """The value go-yaml v2 gives an unquoted scalar when decoding into interface{}.

    Timestamps stay strings there (only a time.Time target parses them). NaN and infinities
    are returned as floats; `to_json` refuses them as JSON does.
    """
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    if text in _NAN:
        return math.nan
    if text in _INF:
        return math.inf
    if text in _NEG_INF:
        return -math.inf
    hint = text[0]
    if hint == ".":
        try:
            return float(text)
        except ValueError:
            return text
    if hint.isdigit() or hint in "+-":
        if _TIMESTAMP.match(text):
            return text
        as_int = _go_int(text)
        if as_int is not None:
            return as_int
        plain = text.replace("_", "")
        if _YAML_FLOAT.match(plain):
            return float(plain)
    return text


def _key_text(key: Any) -> str:
    """A map key as sigs.k8s.io/yaml writes it into JSON (keys are always strings there)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


class _Builder:
    """Turns composed nodes into JSON-ready values, recording non-string plain scalars."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.origins: dict[Path, Origin] = {}

    def _where(self, node: yaml.Node) -> str:
        return f"{self.source}: line {node.start_mark.line + 1}"

    def build(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        raise KubeYAMLError(f"{self._where(node)}: unsupported YAML node")  # pragma: no cover

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        text = str(node.value)
        if node.style is not None or (node.tag == _STR_TAG and not _implicit(node)):
            return text  # quoted, block or explicitly !!str: always a string
        value = resolve_plain(text) if _implicit(node) else _explicit(node)
        if isinstance(value, float) and not math.isfinite(value):
            raise KubeYAMLError(
                f"{self._where(node)}: {text} is not a finite number, and JSON (what kubectl "
                "sends) has no such value"
            )
        if not isinstance(value, str):
            self.origins[path] = Origin(text, node.start_mark.line + 1)
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in _merge_sources(value_node):
                    for key, value in self._mapping(source, path).items():
                        merged.setdefault(key, value)
                continue
            raw = self.build(key_node, (*path, "<key>"))
            self.origins.pop((*path, "<key>"), None)
            if isinstance(raw, dict | list):
                raise KubeYAMLError(f"{self._where(key_node)}: a map key must be a scalar")
            key = _key_text(raw)
            if key in out:
                raise KubeYAMLError(f"{self._where(key_node)}: duplicate key {key!r}")
            out[key] = self.build(value_node, (*path, key))
        return {**merged, **out}


def _implicit(node: yaml.ScalarNode) -> bool:
    """True when the scalar carries no explicit tag (PyYAML resolved it from the text)."""
    resolved = _RESOLVER.resolve(yaml.ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
    return bool(node.tag == resolved)


def _explicit(node: yaml.ScalarNode) -> Any:
    """A scalar with an explicit tag (!!int 3): PyYAML's constructor, as YAML defines it."""
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode) and all(
        isinstance(n, yaml.MappingNode) for n in node.value
    ):
        return list(node.value)
    raise KubeYAMLError(f"line {node.start_mark.line + 1}: << must merge a map or a list of maps")


def load_all(text: str, source: str = "<string>") -> Iterator[Document]:
    """Every document of `text` as kubectl would send it; raises KubeYAMLError or YAMLError."""
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if node is None:  # pragma: no cover - compose_all skips empty documents
            continue
        builder = _Builder(source)
        data = builder.build(node, ())
        yield Document(data, node.start_mark.line + 1, builder.origins)


__all__ = ["Document", "KubeYAMLError", "Origin", "Path", "load_all", "resolve_plain"]
