"""`kubectl aifactory`: the package's kubectl-aifactory entry point and the krew manifest."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import yaml
from hack import krew

from aifactory import __version__
from aifactory.cli.main import KUBECTL_PROG, build_parser

REPO = Path(__file__).resolve().parents[2]


def _commands(prog: str) -> set[str]:
    parser = build_parser(prog)
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_the_package_installs_kubectl_aifactory_with_the_same_subcommands() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-aifactory"] == "aifactory.cli.main:kubectl_plugin"
    assert scripts["aifactoryctl"] == "aifactory.cli.main:main"
    assert _commands(KUBECTL_PROG) == _commands("aifactoryctl")
    assert {"fleet", "explain", "audit"} <= _commands(KUBECTL_PROG)


def test_the_krew_manifest_follows_krews_conventions_and_its_archive() -> None:
    manifest = yaml.safe_load((REPO / "plugins" / "aifactory.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "aifactory"
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"
    assert len(spec["shortDescription"]) < 50  # krew: "less than 50 characters"
    (platform,) = spec["platforms"]
    assert platform["bin"] == "kubectl-aifactory"
    assert platform["uri"].endswith(f"/v{__version__}/{krew.ARCHIVE}")
    assert krew.main(["--check"]) == 0, "run: python -m hack.krew"
    with tarfile.open(fileobj=io.BytesIO(krew.archive()), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {f["from"] for f in platform["files"]} == set(members)
        assert members["kubectl-aifactory"].mode & 0o111
    assert krew.archive() == krew.archive()  # reproducible


def test_the_launcher_runs_the_package_as_kubectl_aifactory() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [str(REPO / "plugins" / "kubectl-aifactory"), "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == f"{KUBECTL_PROG} {__version__}"
    out = subprocess.run(
        [str(REPO / "plugins" / "kubectl-aifactory"), "audit", "--help"],
        capture_output=True,
        text=True,
        env={**env, "AIFACTORY_PYTHON": sys.executable},
        check=True,
    )
    assert "usage: kubectl aifactory audit" in out.stdout and "verify" in out.stdout
