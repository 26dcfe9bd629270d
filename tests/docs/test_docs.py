"""The documentation says what the code does: generated parts are current, manifests are valid,
metric names and status reasons exist, links resolve."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from aifactory import metrics
from aifactory.api import RESOURCES
from aifactory.api.reference import REGENERATE_COMMAND, render

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SOURCE = "\n".join(p.read_text() for p in (REPO / "operator" / "aifactory").rglob("*.py"))
KINDS = {m.KIND: m for m in RESOURCES}
#: Pages whose manifests are complete objects (others show excerpts with "# ...").
USER_GUIDE = [
    DOCS / n
    for n in (
        "getting-started.md",
        "concepts.md",
        "operations.md",
        "gitops.md",
        "troubleshooting.md",
    )
]


def test_reference_is_generated_from_the_models() -> None:
    assert (DOCS / "reference.md").read_text() == render(), (
        f"docs/reference.md is stale; regenerate with: PYTHONPATH=operator .venv/bin/"
        f"{REGENERATE_COMMAND}"
    )


def test_reference_covers_every_spec_field_of_every_kind() -> None:
    text = (DOCS / "reference.md").read_text()
    for kind in ("AIFactoryModule", "InferenceDeployment", "SovereigntyPolicy"):
        assert f"## {kind}" in text
    for path in (
        "spec.location.country",
        "spec.slo.maxLatencyMs",
        "status.unsatisfied.reason",
        "spec.allowedJurisdictions",
        "spec.schedulable",
        "status.placements[].module",
    ):
        assert f"`{path}`" in text, path


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every aifactory.dev object written in a docs page (YAML blocks and shell heredocs)."""
    found = []
    for page in USER_GUIDE:
        text = page.read_text()
        blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
        blocks += re.findall(r"<<'YAML'\n(.*?)\nYAML", text, re.S)
        for block in blocks:
            for doc in yaml.safe_load_all(block):
                if isinstance(doc, dict) and doc.get("kind") in KINDS:
                    found.append((page.name, doc))
    return found


def test_docs_show_each_kind_at_least_once() -> None:
    kinds = {doc["kind"] for _, doc in _manifests()}
    assert {"AIFactoryModule", "InferenceDeployment"} <= kinds


@pytest.mark.parametrize(
    "page,doc", _manifests(), ids=lambda x: x if isinstance(x, str) else x["metadata"]["name"]
)
def test_manifests_in_docs_are_valid(page: str, doc: dict[str, Any]) -> None:
    KINDS[doc["kind"]].from_manifest(doc)


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    defined = {
        m._name + ("_total" if m._type == "counter" else "")
        for m in vars(metrics).values()
        if hasattr(m, "_type") and hasattr(m, "_name")
    }
    ops = (DOCS / "operations.md").read_text()
    documented = set(re.findall(r"\| `(aifactory_[a-z_]+)` \|", ops))
    assert documented == defined
    exprs = " ".join(re.findall(r"expr: (.*)", ops))
    used = set(re.findall(r"aifactory_[a-z_]+", exprs))
    assert used <= defined, used - defined


def test_troubleshooting_reasons_are_the_operators() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    reasons = set(re.findall(r"^\w+\s+(?:True|False)\s+([A-Z][A-Za-z]+)\s", text, re.M))
    assert len(reasons) >= 12, reasons
    for reason in reasons:
        assert f'"{reason}"' in SOURCE, f"{reason} is not a reason the operator writes"
    for template in (
        "no GPU of model",
        "renewable share below",
        "latency >",
        "module cordoned",
        "outside allowed jurisdictions",
        "power budget exceeded",
    ):
        assert template in text and template in SOURCE


def test_links_between_pages_resolve() -> None:
    for page in [*PAGES, REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|yaml))(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_concepts_describe_rebalancing_and_failover() -> None:
    text = (DOCS / "concepts.md").read_text()
    assert "## Rebalancing and failover" in text
    assert "TODO" not in text and "tolerationSeconds" in text.replace(
        "toleration_seconds", "tolerationSeconds"
    )


def test_argocd_health_scripts_compile_and_cover_every_kind() -> None:
    data = yaml.safe_load((DOCS / "gitops" / "argocd-cm.yaml").read_text())["data"]
    lua = lupa.LuaRuntime()
    # PlacementRecords are written by the operator, never by GitOps, and have no status
    for kind in (k for k, m in KINDS.items() if "status" in m.model_fields):
        script = data[f"resource.customizations.health.aifactory.dev_{kind}"]
        lua.execute(f"return function() {script} end")  # compiles
        lua.globals().obj = lua.table_from({"metadata": {"generation": 1}}, recursive=True)
        assert lua.execute(script)["status"] == "Progressing"  # no status yet


def _yaml_blocks() -> list[tuple[str, str]]:
    """Every YAML a reader may copy: ```yaml blocks and heredocs of the user pages and the
    README, and the sample files."""
    found = []
    for page in [*USER_GUIDE, REPO / "README.md"]:
        text = page.read_text()
        blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
        blocks += re.findall(r"<<'YAML'\n(.*?)\nYAML", text, re.S)
        found += [(page.name, b) for b in blocks if "kind:" in b]
    for sample in sorted((REPO / "samples").glob("*.yaml")):
        found.append((f"samples/{sample.name}", sample.read_text()))
    return found


@pytest.mark.parametrize("where,text", _yaml_blocks(), ids=lambda x: x if "\n" not in x else "")
def test_docs_and_samples_quote_codes_yaml_1_1_reads_as_booleans(
    where: str, text: str, tmp_path: Path
) -> None:
    """Read as kubectl reads YAML (1.1), no value a string field needs is a boolean: `NO`,
    `y`, `on` and friends are quoted wherever the docs and samples write them."""
    from aifactory.cli.manifests import check_paths

    path = tmp_path / "block.yaml"
    path.write_text(text)
    report = check_paths([path])
    assert not [p for p in report.problems if "boolean" in p or "quote it" in p], report.problems
