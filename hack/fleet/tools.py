"""Where the fleet's binaries live and how they are built from their published Go modules.

The versions come from the pinned go.mod files under hack/tools/, so the cache directory name
changes whenever a pin changes and a stale binary is never picked up by mistake.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"


@dataclass(frozen=True)
class Tool:
    """One binary: its name on disk, the Go package that builds it, and the module pinning it.

    `version_vars` are the package variables release builds stamp with -X; without them the
    apiserver reports v0.0.0 and Helm's kubeVersion checks fail.
    """

    name: str
    package: str
    module_dir: Path
    version_vars: tuple[str, ...] = ()


_K8S_VERSION_VARS = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")

TOOLS: tuple[Tool, ...] = (
    Tool("etcd", "go.etcd.io/etcd/server/v3", TOOLS_DIR),
    Tool("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", TOOLS_DIR, _K8S_VERSION_VARS),
    Tool(
        "kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        TOOLS_DIR,
        _K8S_VERSION_VARS,
    ),
    Tool("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler", TOOLS_DIR, _K8S_VERSION_VARS),
    Tool("kubectl", "k8s.io/kubernetes/cmd/kubectl", TOOLS_DIR, _K8S_VERSION_VARS),
    Tool("kwok", "sigs.k8s.io/kwok/cmd/kwok", TOOLS_DIR),
    Tool("helm", "helm.sh/helm/v3/cmd/helm", TOOLS_DIR / "helm"),
    # kstatus (sigs.k8s.io/cli-utils): its version is in the name, so a new pin builds anew
    Tool(
        "kstatus-"
        + re.search(  # type: ignore[union-attr]
            r"sigs\.k8s\.io/cli-utils\s+(v\S+)", (TOOLS_DIR / "kstatus" / "go.mod").read_text()
        ).group(1),
        ".",
        TOOLS_DIR / "kstatus",
    ),
)


def kstatus_binary() -> Path:
    """The kstatus command built from the pinned cli-utils module."""
    tool = next(t for t in TOOLS if t.name.startswith("kstatus-"))
    return binary(tool.name)


class ToolError(RuntimeError):
    """A binary is missing or could not be built."""


def _pinned(module_dir: Path, module: str) -> str:
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not match:
        raise ToolError(f"{module} is not pinned in {module_dir / 'go.mod'}")
    return match.group(1)


#: The Gateway API release whose standard-channel CRDs the member clusters get.
GATEWAY_API_DIR = TOOLS_DIR / "gateway-api"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
#: Inside the module: the standard channel's CRDs (and its safe-upgrades admission policy).
GATEWAY_API_CRDS = "config/crd/standard"


def versions() -> dict[str, str]:
    """The pinned versions of every component, read from hack/tools/**/go.mod."""
    return {
        "kubernetes": _pinned(TOOLS_DIR, "k8s.io/kubernetes"),
        "etcd": _pinned(TOOLS_DIR, "go.etcd.io/etcd/server/v3"),
        "kwok": _pinned(TOOLS_DIR, "sigs.k8s.io/kwok"),
        "helm": _pinned(TOOLS_DIR / "helm", "helm.sh/helm/v3"),
        "openreports": _pinned(OPENREPORTS_DIR, OPENREPORTS_MODULE),
        "gateway-api": _pinned(GATEWAY_API_DIR, GATEWAY_API_MODULE),
    }


#: The OpenReports API (openreports.io Report/ClusterReport): its CRDs, from the pinned module.
OPENREPORTS_DIR = TOOLS_DIR / "openreports"
OPENREPORTS_MODULE = "github.com/openreports/reports-api"
OPENREPORTS_CRDS = (
    "config/crd/openreports.io_reports.yaml",
    "config/crd/openreports.io_clusterreports.yaml",
)


def openreports_crds() -> list[Path]:
    """The OpenReports CRD files of the pinned module, cached next to the binaries.

    The module comes from the Go module proxy at the version hack/tools/openreports/go.mod
    pins, checked against its go.sum (and the checksum database) by `go mod download`.
    """
    version = versions()["openreports"]
    cache = bin_dir().parent / f"openreports-{version}"
    files = [cache / Path(rel).name for rel in OPENREPORTS_CRDS]
    if all(f.exists() for f in files):
        return files
    if shutil.which("go") is None:
        raise ToolError("the Go toolchain is required to fetch the OpenReports CRDs")
    proc = subprocess.run(
        ["go", "mod", "download", "-json", OPENREPORTS_MODULE],
        cwd=OPENREPORTS_DIR,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ToolError(f"cannot download {OPENREPORTS_MODULE}@{version}: {proc.stderr.strip()}")
    root = Path(json.loads(proc.stdout)["Dir"])
    cache.mkdir(parents=True, exist_ok=True)
    for rel, target in zip(OPENREPORTS_CRDS, files, strict=True):
        tmp = target.with_suffix(".partial")
        tmp.write_text((root / rel).read_text())
        tmp.rename(target)
    return files


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aifactory"


def bin_dir() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/aifactory/<versions>/bin`."""
    v = versions()
    key = f"k8s-{v['kubernetes']}_etcd-{v['etcd']}_kwok-{v['kwok']}_helm-{v['helm']}"
    return _cache_root() / key / "bin"


def gateway_api_crds_dir() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/aifactory/gateway-api-<v>/standard`: the pinned release's
    standard-channel manifests (kept apart from bin_dir, so a new pin rebuilds no binary)."""
    return _cache_root() / f"gateway-api-{versions()['gateway-api']}" / "standard"


def gateway_api_crds(env: dict[str, str] | None = None) -> list[Path]:
    """The Gateway API manifests to apply, fetched once from the pinned module.

    `go mod download` verifies the module against hack/tools/gateway-api/go.sum (and the Go
    checksum database), then config/crd/standard/*.yaml is copied into the cache.
    """
    out = gateway_api_crds_dir()
    files = sorted(out.glob("*.yaml"))
    if files:
        return files
    if shutil.which("go") is None:
        raise ToolError(
            "the Go toolchain is required to fetch the Gateway API CRDs (go not on PATH)"
        )
    proc = subprocess.run(
        ["go", "mod", "download", "-json", GATEWAY_API_MODULE],
        cwd=GATEWAY_API_DIR,
        env={**os.environ, **(env or {}), "GOFLAGS": "-mod=readonly"},
        capture_output=True,
        text=True,
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    source = Path(info.get("Dir") or "") / GATEWAY_API_CRDS
    if proc.returncode != 0 or info.get("Error") or not source.is_dir():
        raise ToolError(
            f"cannot fetch {GATEWAY_API_MODULE}: {info.get('Error') or proc.stderr.strip()}"
        )
    tmp = out.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(source.glob("*.yaml")):
        shutil.copyfile(f, tmp / f.name)
    tmp.rename(out)
    return sorted(out.glob("*.yaml"))


def binary(name: str) -> Path:
    """Path of a built binary, with an actionable error when it is not there."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ToolError(f"{name} not found at {path}; build it with `make tools`")
    return path


def missing() -> list[Tool]:
    """Tools not yet built into the cache (the kwok stages file counts as part of kwok)."""
    out = [t for t in TOOLS if not os.access(bin_dir() / t.name, os.X_OK)]
    kwok = next(t for t in TOOLS if t.name == "kwok")
    if not kwok_stages_file().exists() and kwok not in out:
        out.append(kwok)
    return out


#: kwok's own "fast" node and pod lifecycle, plus lease heartbeats: what kwokctl uses by default.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def kwok_stages_file() -> Path:
    """kwok's stage configuration, taken from the pinned kwok module at build time."""
    return bin_dir() / "kwok-stages.yaml"


def _write_kwok_stages(env: dict[str, str]) -> None:
    # The kwok binary ships no default stages; kwokctl applies these from the same module. Reading
    # them from the pinned module keeps them in step with the binary without vendoring them.
    proc = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=TOOLS_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ToolError(f"cannot locate the kwok module for its stages: {proc.stderr.strip()}")
    root = Path(proc.stdout.strip())
    docs = [(root / rel).read_text().strip() for rel in KWOK_STAGES]
    tmp = kwok_stages_file().with_suffix(".partial")
    tmp.write_text("\n---\n".join(docs) + "\n")
    tmp.rename(kwok_stages_file())


def _ldflags(tool: Tool) -> str:
    flags = ["-s", "-w"]
    if tool.version_vars:
        version = versions()["kubernetes"]
        major, minor = version.lstrip("v").split(".")[:2]
        for pkg in tool.version_vars:
            flags += [
                f"-X {pkg}.gitVersion={version}",
                f"-X {pkg}.gitMajor={major}",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
            ]
    if tool.name == "helm":
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={versions()['helm']}")
    return " ".join(flags)


def build(*, log: bool = True) -> Path:
    """Build every missing binary into bin_dir(); already built ones are skipped.

    Each binary is built into a temporary name and renamed, so a build killed half-way never
    leaves a truncated binary that would later be taken for a good one.
    """
    if shutil.which("go") is None:
        raise ToolError("the Go toolchain is required to build the fleet binaries (go not on PATH)")
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    todo = missing()
    if not todo and log:
        print(f"tools: all {len(TOOLS)} binaries present in {out}", flush=True)
    crds = gateway_api_crds()
    if log:
        print(f"tools: Gateway API CRDs ({len(crds)} files) in {crds[0].parent}", flush=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    for i, tool in enumerate(todo, 1):
        if tool.name == "kwok" and os.access(out / tool.name, os.X_OK):
            _write_kwok_stages(env)
            continue
        start = time.monotonic()
        if log:
            print(f"tools: [{i}/{len(todo)}] building {tool.name} ({tool.package})", flush=True)
        tmp = out / f".{tool.name}.partial"
        proc = subprocess.run(
            [
                "go",
                "build",
                "-trimpath",
                f"-ldflags={_ldflags(tool)}",
                "-o",
                str(tmp),
                tool.package,
            ],
            cwd=tool.module_dir,
            env=env,
            stdout=sys.stdout if log else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise ToolError(f"building {tool.name} failed (exit {proc.returncode})")
        tmp.rename(out / tool.name)
        if tool.name == "kwok":
            _write_kwok_stages(env)
        if log:
            print(f"tools:       {tool.name} done in {time.monotonic() - start:.0f}s", flush=True)
    return out
