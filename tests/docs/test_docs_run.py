"""README.md and docs/getting-started.md run as written, on a fresh fleet, and print what they
show; the demo's live placements are what `aifactoryctl place --mode operator` prints.

Every shell block runs in order in `bash -eo pipefail` after `source hack/env.sh`, against a
fleet of its own (a temporary AIFACTORY_FLEET_ROOT, so nothing else is disturbed); outputs are
compared with the ```text blocks that follow (hack/docs.py says how). Blocks marked
`<!-- docs-test: skip (why) -->` are reported as warnings. `make readme` refreshes the outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hack.demo import live_placements
from hack.docs import REPO, environment, report, run_pages, teardown
from hack.fleet import Fleet
from hack.fleet.topology import config_from_modules

pytestmark = pytest.mark.fleet


class SkippedDocBlock(UserWarning):
    """A documented shell block the docs test does not run (the marker says why)."""


@pytest.fixture(scope="module")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("docs-fleet")
    try:
        yield root
    finally:
        teardown(root)


def _run(root: Path, page: str) -> None:
    results, skipped = run_pages(root, (page,), log=False)
    for block in skipped:
        warnings.warn(f"{block.where} not run: {block.skip}", SkippedDocBlock, stacklevel=1)
    failures = report(results, skipped)
    assert not failures, "\n\n".join(failures)
    ran = [r.block for r in results]
    assert ran and all(r.code == 0 for r in results)


def _demo(root: Path) -> Fleet:
    """The demo under `root`, started if an earlier test has not (e.g. with -k)."""
    fleet = Fleet(config_from_modules(REPO / "samples" / "modules.yaml", root=root))
    if not fleet.is_up():
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "python"), "-m", "hack.demo"],
            cwd=REPO,
            env=environment(root),
            check=True,
            capture_output=True,
            timeout=900,
        )
    return fleet


def test_readme_runs_as_written(docs_root: Path) -> None:
    _run(docs_root, "README.md")


def test_demo_settles_where_place_mode_operator_says(docs_root: Path) -> None:
    """After `make demo` settles, every sample deployment runs where the offline model of the
    operator puts it: no tolerance (nothing in the samples ties)."""
    fleet = _demo(docs_root)
    live = live_placements(fleet)
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "aifactoryctl"),
            "place",
            "-f",
            "samples/",
            "--mode",
            "operator",
            "-o",
            "json",
        ],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "operator"
    offline = {
        p["deployment"]: {a["module"]: a["replicas"] for a in p["assignments"]}
        for p in doc["placements"]
    }
    assert set(live) == {
        "batch/nightly-summarizer",
        "chat/chat-large",
        "chat/chat-small",
        "eu-chat/eu-assistant",
        "ml-platform/support-classifier",
    }
    assert live == offline


def test_getting_started_runs_as_written(docs_root: Path) -> None:
    _run(docs_root, "docs/getting-started.md")
