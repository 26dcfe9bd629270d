"""crds/ must be exactly what the models generate, and structural as the apiserver wants it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aifactory.api import RESOURCES
from aifactory.api.crds import REGENERATE_COMMAND, crd_filename, main, render_crds

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
RENDERED = render_crds()


def test_crds_dir_matches_the_models() -> None:
    stale = [
        name
        for name, text in RENDERED.items()
        if not (CRDS / name).exists() or (CRDS / name).read_text() != text
    ]
    extra = sorted(
        p.name
        for p in CRDS.glob("aifactory.dev_*.yaml")
        if p.name not in RENDERED  # a kind was renamed or removed
    )
    assert not stale and not extra, (
        f"crds/ is out of date with aifactory.api (stale: {stale}, unexpected: {extra}).\n"
        f"Regenerate from the repository root with:\n"
        f"    PYTHONPATH=operator .venv/bin/{REGENERATE_COMMAND}"
    )


def test_main_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RENDERED)
    assert main(["--out", str(tmp_path), "--check"]) == 0
    assert "regenerate with" in capsys.readouterr().err


def _crd(model: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RENDERED[crd_filename(model)])
    return doc


def _walk(node: dict[str, Any], path: str = "") -> Any:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("model", RESOURCES, ids=lambda m: m.KIND)
def test_schema_is_structural(model: Any) -> None:
    version = _crd(model)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "not", "nullable"} & set(node), path
        assert (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        ), path
        assert node.get("additionalProperties") is not False, path
        assert not node.get("uniqueItems"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), path
        if path.startswith(".spec.") and path[-1] not in "]}":
            assert node.get("description"), f"{path} has no description for kubectl explain"
        # CEL rules need bounded lists and strings to stay within the cost budget.
        if "x-kubernetes-validations" in node and node["type"] == "array":
            assert "maxItems" in node, path


def test_crd_names_scopes_and_categories() -> None:
    expected = {
        "AIFactoryModule": ("aifactorymodules", "Cluster", ["afm"]),
        "InferenceDeployment": ("inferencedeployments", "Namespaced", ["infd"]),
        "SovereigntyPolicy": ("sovereigntypolicies", "Cluster", ["sovpol"]),
        "PlacementRecord": ("placementrecords", "Cluster", ["plrec"]),
        "InferenceRouter": ("inferencerouters", "Namespaced", ["infr"]),
    }
    for model in RESOURCES:
        crd = _crd(model)
        plural, scope, short = expected[model.KIND]
        assert crd["metadata"]["name"] == f"{plural}.aifactory.dev"
        assert crd["spec"]["scope"] == scope
        assert crd["spec"]["names"]["shortNames"] == short
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1"
        if model.KIND == "PlacementRecord":
            # written once: no status; not listed by `kubectl get aifactory` (thousands)
            assert crd["spec"]["names"]["categories"] == ["aifactory-audit"]
            assert "subresources" not in version
            spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            assert {"rule": "self == oldSelf"}.items() <= spec["x-kubernetes-validations"][
                0
            ].items()
            continue
        assert crd["spec"]["names"]["categories"] == ["aifactory"]
        assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("model", RESOURCES, ids=lambda m: m.KIND)
def test_printer_columns_point_at_schema_fields(model: Any) -> None:
    version = _crd(model)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[?", 1)[0].lstrip(".").split(".")
        if path[0] == "metadata":
            continue
        node = schema
        for step in path:
            node = node.get("properties", {}).get(step) or node.get("items", {}).get(
                "properties", {}
            ).get(step)
            assert node is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"


def test_cel_rules_and_messages_are_in_the_crds() -> None:
    module = RENDERED[crd_filename(RESOURCES[0])]
    assert "energy.sources[].share must sum to 1" in module
    assert "cluster must set exactly one of kubeconfigSecretRef or nodeSelector" in module
    deployment = RENDERED[crd_filename(RESOURCES[1])]
    assert "replicas.min must be less than or equal to replicas.max" in deployment
    assert "exclusiveMinimum: true" in deployment  # throughputPerReplica > 0
