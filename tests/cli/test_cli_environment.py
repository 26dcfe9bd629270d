"""One way into the environment: `source hack/env.sh`; and a CLI that says how to get a
kubeconfig instead of "No configuration found"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CTL = [sys.executable, "-m", "aifactory.cli.main"]


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "PYTHONPATH"}}
    return {**keep, "HOME": str(home), **extra}


@pytest.mark.parametrize("command", [["fleet"], ["explain", "-n", "eu-chat", "eu-assistant"]])
def test_without_any_kubeconfig_the_cli_says_how_to_get_one(
    tmp_path: Path, command: list[str]
) -> None:
    proc = subprocess.run(
        [*CTL, *command], env=_clean_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "No configuration found" not in proc.stderr
    assert proc.stderr.startswith("error: no kubeconfig: KUBECONFIG is not set")
    assert "source hack/env.sh" in proc.stderr and "--kubeconfig" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_kubeconfig_path_that_does_not_exist_says_to_start_the_fleet(tmp_path: Path) -> None:
    missing = tmp_path / "hub.kubeconfig"
    proc = subprocess.run(
        [*CTL, "fleet"],
        env=_clean_env(tmp_path, KUBECONFIG=str(missing)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"KUBECONFIG={missing} does not exist" in proc.stderr and "make demo" in proc.stderr


def test_env_sh_puts_pinned_binaries_and_aifactoryctl_first_and_points_at_the_hub(
    tmp_path: Path,
) -> None:
    script = (
        "source hack/env.sh && source hack/env.sh && "  # twice: harmless
        'echo "$PATH" && echo "$KUBECONFIG" && command -v aifactoryctl'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env={
            # the real HOME (and cache): bin-dir lives there
            **{k: v for k, v in os.environ.items() if k in {"HOME", "XDG_CACHE_HOME", "LANG"}},
            "PATH": "/usr/bin:/bin",
            "AIFACTORY_FLEET_ROOT": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    path, kubeconfig, ctl = proc.stdout.splitlines()
    bin_dir = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "hack.fleet", "bin-dir"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    entries = path.split(":")
    assert entries[:2] == [bin_dir, str(REPO / ".venv" / "bin")]
    assert entries.count(bin_dir) == 1  # sourcing twice does not grow PATH
    assert kubeconfig == str(tmp_path / "hub.kubeconfig")
    assert ctl == str(REPO / ".venv" / "bin" / "aifactoryctl")
    # no fleet there yet: it says so, and how to start one
    assert "no fleet there yet: `make demo` starts one" in proc.stderr


def test_env_sh_refuses_to_be_run_instead_of_sourced() -> None:
    proc = subprocess.run(
        ["bash", "hack/env.sh"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1 and "source it" in proc.stderr
