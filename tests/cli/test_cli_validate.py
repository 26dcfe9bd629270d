"""`aifactoryctl validate` and the manifest reader it shares with `place`.

YAML is read as kubectl reads it (go-yaml v2, YAML 1.1 plain scalars), so the Norway trap and
its siblings are caught offline with a fix to copy; every invalid manifest of the shared API
table is refused by `validate` too, naming the same field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.api.api_invalid_manifests import INVALID, UNQUOTED_NORWAY, Invalid

from aifactory.cli.kubeyaml import KubeYAMLError, load_all, resolve_plain
from aifactory.cli.main import main
from aifactory.cli.validation import check_document, field_path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"

OSLO = """\
apiVersion: aifactory.dev/v1alpha1
kind: AIFactoryModule
metadata:
  name: oslo
spec:
  location: {{country: {country}, latitude: 59.91, longitude: 10.75}}
  energy:
    sources: [{{type: hydro, share: 1}}]
    carbonIntensity: 30
    powerBudgetKW: 50
  capacity:
    gpus: [{{model: H100, count: 32, memoryGiB: 80, powerW: 700}}]
  cluster: {{nodeSelector: {{aifactory.dev/module: oslo}}}}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_samples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(SAMPLES))
    assert code == 0
    assert out.strip() == "19 documents: 19 valid, 0 invalid, 0 skipped"


def test_unquoted_norway_says_quote_it_with_file_document_field_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n" + OSLO.format(country="NO"),
    )
    code, out, err = run(capsys, "validate", "-f", str(path))
    assert code == 1
    assert (
        f"error: {path}: document 2 (AIFactoryModule oslo): spec.location.country (line 10): "
        "expected string, got boolean false: YAML 1.1, which kubectl reads, takes the unquoted "
        'NO as false; quote it: country: "NO"'
    ) in out.splitlines()
    assert "2 documents: 1 valid, 1 invalid, 0 skipped" in err


def test_quoted_norway_is_valid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, OSLO.format(country='"NO"'))
    code, out, _ = run(capsys, "validate", "-f", str(path))
    assert (code, out.strip()) == (0, "1 document: 1 valid, 0 invalid, 0 skipped")


def test_place_gives_the_same_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, OSLO.format(country="NO"))
    code, out, err = run(capsys, "place", "-f", str(path))
    assert code == 1 and out == ""
    assert 'quote it: country: "NO"' in err and f"{path}: document 1 (AIFactoryModule oslo)" in err


@pytest.mark.parametrize(
    ("text", "value"),
    # Booleans in YAML 1.1 as go-yaml v2 reads them: more than PyYAML (y, n) ...
    [(t, True) for t in ("y", "Y", "yes", "Yes", "YES", "true", "on", "On", "ON")]
    + [(t, False) for t in ("n", "N", "no", "No", "NO", "false", "off", "OFF")]
    # ... numbers as Go parses them, and strings where PyYAML would not give one.
    + [
        ("0123", 83),  # octal
        ("0x1F", 31),
        ("1_000", 1000),
        ("1e3", 1000.0),
        ("08", 8.0),  # not octal, so a float
        ("12:30", "12:30"),  # no sexagesimal (PyYAML: 750)
        ("2025-01-01", "2025-01-01"),  # timestamps stay strings
        ("~", None),
        ("", None),
        ("NONE", "NONE"),
        ("IS", "IS"),
        ("+1", 1),
        ("-.5", -0.5),
    ],
)
def test_plain_scalars_resolve_as_kubectl_reads_them(text: str, value: Any) -> None:
    resolved = resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


@pytest.mark.parametrize("text", [".inf", "-.Inf", ".nan"])
def test_non_finite_numbers_are_refused_like_json(text: str) -> None:
    assert math.isnan(resolve_plain(text)) or math.isinf(resolve_plain(text))
    with pytest.raises(KubeYAMLError, match=f"line 2: {text} is not a finite number"):
        list(load_all(f"a: 1\nb: {text}\n", "f.yaml"))


def test_duplicate_keys_and_merge_keys() -> None:
    with pytest.raises(KubeYAMLError, match="line 3: duplicate key 'country'"):
        list(load_all("spec:\n  country: IS\n  country: DE\n", "f.yaml"))
    [doc] = load_all("base: &b {x: 1, z: 2}\nm:\n  <<: *b\n  x: 3\n")
    assert doc.data["m"] == {"x": 3, "z": 2}


def test_a_boolean_label_value_is_caught_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = OSLO.format(country="IS").replace(
        "  name: oslo\n", "  name: oslo\n  labels: {aifactory.dev/green: y}\n"
    )
    code, out, _ = run(capsys, "validate", "-f", str(write(tmp_path, text)))
    assert code == 1
    assert "metadata.labels[aifactory.dev/green] (line 5): expected string, got boolean true" in out
    assert 'quote it: aifactory.dev/green: "y"' in out


def test_every_problem_is_listed_and_other_kinds_are_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (
        OSLO.format(country="IS").replace("powerBudgetKW: 50", "powerBudgetKW: 50\n    pwe: 1.1")
        + "---\napiVersion: aifactory.dev/v1alpha1\nkind: InferenceDeploymnt\nmetadata: {name: x}\n"
        + "---\napiVersion: aifactory.dev/v1\nkind: SovereigntyPolicy\nmetadata: {name: p}\n"
        + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: Team_A}\n"
        + "---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\n"
        + "metadata: {name: critical}\nvalue: 2000000000\npreemptionPolicy: Sometimes\n"
        + "---\nkind: SovereigntyPolicy\nmetadata: {name: q}\nspec: {enforcement: Warn}\n"
    )
    code, out, err = run(capsys, "validate", "-f", str(write(tmp_path, text)))
    assert code == 1
    lines = out.splitlines()
    expected = [
        'document 1 (AIFactoryModule oslo): spec.energy.pwe: unknown field "spec.energy.pwe"',
        "document 2 (InferenceDeploymnt x): kind: aifactory.dev has no kind 'InferenceDeploymnt'",
        "document 3 (SovereigntyPolicy p): apiVersion: must be aifactory.dev/v1alpha1",
        "document 4 (Deployment web): skipped: apps/v1 Deployment is not checked by aifactoryctl",
        "document 5 (Namespace Team_A): metadata.name: must be a lowercase RFC 1123 label",
        "document 6 (PriorityClass critical): value: must be at most 1,000,000,000",
        "document 6 (PriorityClass critical): preemptionPolicy: must be PreemptLowerPriority or",
        "document 7 (SovereigntyPolicy q): apiVersion: Field required",
        "document 7 (SovereigntyPolicy q): spec.enforcement: Input should be 'Enforce' or 'Audit'",
    ]
    for text in expected:
        assert any(text in line for line in lines), f"{text!r} not in:\n{out}"
    assert "7 documents: 0 valid, 6 invalid, 1 skipped" in err


def test_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, OSLO.format(country="NO"))
    code, out, _ = run(capsys, "validate", "-f", str(path), "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["valid"] is False
    assert (doc["documents"], doc["validDocuments"], doc["skipped"]) == (1, 0, [])
    assert len(doc["problems"]) == 1 and 'quote it: country: "NO"' in doc["problems"][0]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_manifests_are_refused_naming_the_field(case: Invalid) -> None:
    """The shared table, through the CLI's reader and checker (YAML text, as a user has it)."""
    [doc] = load_all(yaml.safe_dump(case.manifest(), sort_keys=False), "case.yaml")
    checked = check_document(doc.data, doc)
    assert checked.obj is None
    # A rule across fields reports at the object holding them (spec.location for region).
    paths = [field_path(p.path) for p in checked.problems]
    assert any(case.field.startswith(p) or p.startswith(case.field) for p in paths), (
        case.field,
        [str(p) for p in checked.problems],
    )


def test_troubleshooting_shows_what_validate_prints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, UNQUOTED_NORWAY, "oslo.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "validate", "-f", "oslo.yaml")
    docs = (REPO / "docs" / "troubleshooting.md").read_text()
    assert code == 1
    assert f"$ aifactoryctl validate -f oslo.yaml\n{out}{err}```" in docs
