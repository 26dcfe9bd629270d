"""Read the manifests users `kubectl apply`: files or directories of multi-document YAML.

Only the kinds the engine needs are kept (AIFactoryModule, InferenceDeployment,
SovereigntyPolicy, Namespace, scheduling.k8s.io PriorityClass); others are ignored so a whole
deploy directory can be passed.
Every invalid document is reported with its file, document number and field, the way a user
would look for it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.api.priority import PriorityClass

SUFFIXES = (".yaml", ".yml", ".json")
#: `-f -` reads standard input, as kubectl does.
STDIN = Path("<stdin>")


class ManifestError(Exception):
    """Input that cannot be used; the message names every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(slots=True)
class Snapshot:
    """The objects read from the files, in file order."""

    modules: list[AIFactoryModule] = field(default_factory=list)
    deployments: list[InferenceDeployment] = field(default_factory=list)
    policies: list[SovereigntyPolicy] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    priority_classes: list[PriorityClass] = field(default_factory=list)


def field_path(loc: Iterable[int | str]) -> str:
    """pydantic's error location as a manifest path: spec.capacity.gpus[0].count."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, directories walked recursively in sorted order for a stable result."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if str(raw) == "-":
            out.append(STDIN)
        elif path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES))
        else:
            out.append(path)
    return out


def _documents(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, document) for every document, flattening `kind: List` items."""
    text = sys.stdin.read() if path == STDIN else path.read_text()
    for i, doc in enumerate(yaml.safe_load_all(text), start=1):
        where = f"{path}: document {i}"
        if (
            isinstance(doc, dict)
            and doc.get("kind") == "List"
            and isinstance(doc.get("items"), list)
        ):
            for j, item in enumerate(doc["items"]):
                yield f"{where} item {j}", item
        else:
            yield where, doc


def load(paths: Iterable[str | Path]) -> Snapshot:
    """Read and validate every manifest under `paths`; raise ManifestError listing all problems."""
    snap = Snapshot()
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    files = expand_paths(paths)
    if not files:
        raise ManifestError(["no manifest files found"])
    for path in files:
        try:
            docs = list(_documents(path))
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        except yaml.YAMLError as exc:
            problems.append(f"{path}: invalid YAML: {exc}")
            continue
        for where, doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict):
                problems.append(f"{where}: expected a mapping, got {type(doc).__name__}")
                continue
            kind = doc.get("kind")
            name = (
                (doc.get("metadata") or {}).get("name")
                if isinstance(doc.get("metadata"), dict)
                else None
            )
            label = f"{where} ({kind} {name})" if name else f"{where} ({kind})"
            try:
                if kind == "Namespace":
                    if not name:
                        problems.append(f"{label}: metadata.name: Field required")
                        continue
                    labels = doc["metadata"].get("labels") or {}
                    snap.namespaces[str(name)] = {str(k): str(v) for k, v in labels.items()}
                    continue
                obj: AIFactoryModule | InferenceDeployment | SovereigntyPolicy | PriorityClass
                if kind == "PriorityClass":
                    obj = PriorityClass.from_manifest(doc)
                    snap.priority_classes.append(obj)
                    key = ("PriorityClass", obj.name)
                elif kind == "AIFactoryModule":
                    obj = AIFactoryModule.from_manifest(doc)
                    snap.modules.append(obj)
                    key = ("AIFactoryModule", obj.name)
                elif kind == "InferenceDeployment":
                    obj = InferenceDeployment.from_manifest(doc)
                    snap.deployments.append(obj)
                    key = ("InferenceDeployment", obj.ref)
                elif kind == "SovereigntyPolicy":
                    obj = SovereigntyPolicy.from_manifest(doc)
                    snap.policies.append(obj)
                    key = ("SovereigntyPolicy", obj.name)
                else:
                    continue
            except ValidationError as exc:
                for err in exc.errors():
                    problems.append(f"{label}: {field_path(err['loc'])}: {err['msg']}")
                continue
            if key in seen:
                problems.append(f"{label}: duplicate {key[0]} {key[1]} (first in {seen[key]})")
            else:
                seen[key] = where
    if problems:
        raise ManifestError(problems)
    return snap
