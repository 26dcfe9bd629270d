"""Read the manifests users `kubectl apply`: files or directories of multi-document YAML.

YAML is read as kubectl reads it (`kubeyaml`: YAML 1.1 plain scalars, so an unquoted `NO` is
false) and checked as the apiserver checks it (`validation`: types and unknown fields against
the generated CRD schema, then the models' rules). Every problem is reported with its file,
document number, object and field, the way a user would look for it.

`load` keeps what the engine needs (AIFactoryModule, InferenceDeployment, SovereigntyPolicy,
InferenceRouter, Namespace, scheduling.k8s.io PriorityClass) and ignores other kinds so a whole
deploy directory can be passed; `check_paths` reports on every document, for
`aifactoryctl validate`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aifactory.api import (
    AIFactoryModule,
    InferenceDeployment,
    InferenceRouter,
    SovereigntyPolicy,
)
from aifactory.api.priority import PriorityClass
from aifactory.cli.kubeyaml import Document, KubeYAMLError, load_all
from aifactory.cli.validation import Checked, check_document, field_path

SUFFIXES = (".yaml", ".yml", ".json")
#: `-f -` reads standard input, as kubectl does.
STDIN = Path("<stdin>")

__all__ = [
    "STDIN",
    "SUFFIXES",
    "ManifestError",
    "Report",
    "Snapshot",
    "check_paths",
    "expand_paths",
    "field_path",
    "load",
]


class ManifestError(Exception):
    """Input that cannot be used; the message names every problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(slots=True)
class Snapshot:
    """The objects read from the files, in file order."""

    modules: list[AIFactoryModule] = field(default_factory=list)
    deployments: list[InferenceDeployment] = field(default_factory=list)
    policies: list[SovereigntyPolicy] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    priority_classes: list[PriorityClass] = field(default_factory=list)
    routers: list[InferenceRouter] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """What `check_paths` found: one line per problem and per skipped document."""

    documents: int = 0
    valid: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: The valid documents, in file order, with where they came from.
    checked: list[tuple[str, Checked]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def expand_paths(paths: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Files as given; for a directory its manifest files in sorted order, as kubectl reads
    `-f DIR`: only the directory itself unless `recursive` (kubectl's `-R`), so a
    subdirectory such as samples/simulation/ is a fleet of its own."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if str(raw) == "-":
            out.append(STDIN)
        elif path.is_dir():
            found = path.rglob("*") if recursive else path.glob("*")
            out.extend(sorted(p for p in found if p.is_file() and p.suffix in SUFFIXES))
        else:
            out.append(path)
    return out


def _documents(path: Path) -> Iterator[tuple[str, Any, Document]]:
    """(where, data, document) for every document, flattening `kind: List` items."""
    text = sys.stdin.read() if path == STDIN else path.read_text()
    for i, doc in enumerate(load_all(text, str(path)), start=1):
        where = f"{path}: document {i}"
        data = doc.data
        if (
            isinstance(data, dict)
            and data.get("kind") == "List"
            and isinstance(data.get("items"), list)
        ):
            for j, item in enumerate(data["items"]):
                # Origins are keyed from the List's root: re-key them from the item.
                prefix = ("items", j)
                origins = {p[2:]: o for p, o in doc.origins.items() if p[:2] == prefix}
                yield f"{where} item {j}", item, Document(item, doc.line, origins)
        else:
            yield where, data, doc


def _label(where: str, checked: Checked) -> str:
    if checked.kind and checked.name:
        return f"{where} ({checked.kind} {checked.name})"
    return f"{where} ({checked.kind})" if checked.kind else where


def check_paths(paths: Iterable[str | Path], *, recursive: bool = False) -> Report:
    """Read and check every document under `paths`, collecting every problem."""
    report = Report()
    seen: dict[tuple[str, str], str] = {}
    files = expand_paths(paths, recursive=recursive)
    if not files:
        report.problems.append("no manifest files found")
        return report
    for path in files:
        try:
            docs = list(_documents(path))
        except OSError as exc:
            report.problems.append(f"{path}: {exc.strerror or exc}")
            continue
        except KubeYAMLError as exc:
            report.problems.append(str(exc))
            continue
        except yaml.YAMLError as exc:
            report.problems.append(f"{path}: invalid YAML: {exc}")
            continue
        for where, data, doc in docs:
            if data is None:
                continue
            report.documents += 1
            checked = check_document(data, doc)
            label = _label(where, checked)
            if checked.skipped:
                report.skipped.append(f"{label}: skipped: {checked.skipped}")
                continue
            if checked.problems:
                report.problems += [f"{label}: {problem}" for problem in checked.problems]
                continue
            key = _identity(checked)
            if key in seen:
                report.problems.append(
                    f"{label}: duplicate {key[0]} {key[1]} (first in {seen[key]})"
                )
                continue
            seen[key] = where
            report.valid += 1
            report.checked.append((where, checked))
    return report


def _identity(checked: Checked) -> tuple[str, str]:
    """(kind, name) as the apiserver keys objects: namespaced ones by namespace/name."""
    obj = checked.obj
    if isinstance(obj, InferenceDeployment | InferenceRouter):
        return (obj.KIND, obj.ref)
    return (str(checked.kind), str(checked.name))


def load(paths: Iterable[str | Path], *, recursive: bool = False) -> Snapshot:
    """Read and validate every manifest under `paths`; raise ManifestError listing all problems.

    Kinds other than ours, Namespace and PriorityClass are ignored; directories are read as
    `expand_paths` says.
    """
    report = check_paths(paths, recursive=recursive)
    if not report.ok:
        raise ManifestError(report.problems)
    snap = Snapshot()
    for _, checked in report.checked:
        obj = checked.obj
        if isinstance(obj, AIFactoryModule):
            snap.modules.append(obj)
        elif isinstance(obj, InferenceDeployment):
            snap.deployments.append(obj)
        elif isinstance(obj, SovereigntyPolicy):
            snap.policies.append(obj)
        elif isinstance(obj, InferenceRouter):
            snap.routers.append(obj)
        elif checked.kind == "Namespace" and checked.name:
            snap.namespaces[checked.name] = obj
        elif checked.kind == "PriorityClass" and isinstance(obj, dict):
            snap.priority_classes.append(PriorityClass.from_manifest(obj))
    return snap
