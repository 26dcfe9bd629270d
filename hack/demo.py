"""`make demo`: the sample fleet on real control planes, with the operator placing the samples.

Steps: local fleet derived from samples/modules.yaml (three member clusters, four node-pool
modules on the hub), member kubeconfigs registered as Secrets, CRDs applied, the operator
started against the hub (free ports; rebalanceInterval DEMO_REBALANCE_INTERVAL so it settles in
seconds), namespaces, policies and modules applied and every module waited Ready, then the
deployments applied. Once every InferenceDeployment is Ready and a fleet-wide rebalance after
that moved nothing (the operator has settled), it prints the fleet, the deployments, and the
live placement next to `aifactoryctl place -f samples/ --mode operator`, explaining any
difference. The fleet and the operator keep running (`make demo-down` stops both).

`AIFACTORY_FLEET_ROOT` moves the fleet (default .fleet/), as for the tests and hack/env.sh.
`python -m hack.demo report` prints the report again; `python -m hack.demo down` stops all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from hack.fleet import HUB, Fleet, FleetError
from hack.fleet.tools import openreports_crds
from hack.fleet.topology import config_from_modules

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
#: Seconds between the demo operator's fleet-wide rebalances (the operator's default is 300).
DEMO_REBALANCE_INTERVAL = 10
#: The operator logs this after every fleet-wide plan.
REBALANCE_LOG = "rebalancer: fleet plan by"
SAMPLE_FILES = (
    "namespaces.yaml",
    "policies.yaml",
    "modules.yaml",
    "deployments.yaml",
    "cascade.yaml",
)


def fleet_root() -> Path:
    """Where the demo's fleet lives: $AIFACTORY_FLEET_ROOT, default .fleet/ in the repository."""
    root = Path(os.environ.get("AIFACTORY_FLEET_ROOT") or REPO / ".fleet")
    return root if root.is_absolute() else REPO / root


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def demo_fleet() -> Fleet:
    return Fleet(config_from_modules(SAMPLES / "modules.yaml", root=fleet_root()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_operator(
    fleet: Fleet, *, log_name: str = "operator.log", extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run `python -m aifactory` against the hub, logging to the fleet's logs/, on free ports."""
    env = {
        **os.environ,
        "KUBECONFIG": str(fleet.kubeconfig(HUB)),
        "AIFACTORY_METRICS_PORT": str(_free_port()),
        "AIFACTORY_LIVENESS_PORT": str(_free_port()),
        "AIFACTORY_WEBHOOK_PORT": str(_free_port()),
        **(extra_env or {}),
    }
    log = (fleet.log_dir / log_name).open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aifactory"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    (fleet.root / "operator.ports").write_text(
        json.dumps({k: env[k] for k in env if k.endswith("_PORT") and k.startswith("AIFACTORY")})
    )
    return proc


def install(fleet: Fleet, crds: Path = REPO / "crds", *, openreports: bool = True) -> None:
    """The CRDs, waited until Established so objects of the new kinds can be applied; with
    `openreports`, also the OpenReports CRDs (compliance reports) from the pinned module."""
    fleet.kubectl(HUB, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
    fleet.kubectl(
        HUB,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=aifactory",
    )
    if openreports:
        for path in openreports_crds():
            fleet.kubectl(HUB, "apply", "--server-side", "--force-conflicts", "-f", str(path))
        fleet.kubectl(
            HUB,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/reports.openreports.io",
            "crd/clusterreports.openreports.io",
        )


def apply_samples(fleet: Fleet, files: tuple[str, ...] = SAMPLE_FILES) -> None:
    """Server-side apply sample files in dependency order (namespaces before what lives in them)."""
    for name in files:
        fleet.kubectl(HUB, "apply", "--server-side", "--force-conflicts", "-f", str(SAMPLES / name))


def _wait(what: str, probe: Any, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """Poll `probe` until true; stop early if the operator died."""
    deadline = time.monotonic() + timeout
    while not probe():
        if proc.poll() is not None:
            raise FleetError(f"the operator exited while waiting for {what}; see its log")
        if time.monotonic() > deadline:
            raise FleetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _serving(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _kubectl_ok(fleet: Fleet, *args: str) -> bool:
    try:
        fleet.kubectl(HUB, *args)
    except FleetError:
        return False
    return True


def _rebalanced_since(log: Path, offset: int) -> str | None:
    """The first rebalancer line written after `offset`, if any."""
    with log.open("rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode(errors="replace")
            if REBALANCE_LOG in line:
                return line.strip()
    return None


def wait_settled(fleet: Fleet, proc: subprocess.Popen[bytes], timeout: float = 300) -> str:
    """Every InferenceDeployment Ready, then a fleet-wide plan made after that moves nothing."""
    log = fleet.log_dir / "operator.log"
    deadline = time.monotonic() + timeout
    while True:
        left = max(10.0, deadline - time.monotonic())
        _wait(
            "every InferenceDeployment Ready",
            lambda: _kubectl_ok(
                fleet, "wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=10s"
            ),
            left,
            proc,
        )
        offset = log.stat().st_size
        found: list[str] = []

        def planned(found: list[str] = found, offset: int = offset) -> bool:
            line = _rebalanced_since(log, offset)
            if line:
                found.append(line)
            return bool(line)

        _wait("the next fleet-wide rebalance", planned, 3 * DEMO_REBALANCE_INTERVAL + 30, proc)
        if " 0 deployments would move" in found[0]:
            return found[0]
        if time.monotonic() > deadline:
            raise FleetError(f"still rebalancing after {timeout:.0f}s: {found[0]}")


# ------------------------------------------------------------------------------- report
def live_placements(fleet: Fleet) -> dict[str, dict[str, int]]:
    """namespace/name -> module -> replicas, from status.placements on the hub."""
    data = json.loads(fleet.kubectl(HUB, "get", "infd", "-A", "-o", "json"))
    out = {}
    for item in data["items"]:
        ref = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
        out[ref] = {
            p["module"]: int(p["replicas"])
            for p in (item.get("status") or {}).get("placements", [])
            if p.get("replicas")
        }
    return dict(sorted(out.items()))


def offline_placements(paths: tuple[str, ...] = ("samples/",)) -> dict[str, dict[str, int]]:
    """What `aifactoryctl place -f samples/ --mode operator -o json` prints, per deployment."""
    from aifactory.cli.place import decide

    placed = decide([str(REPO / p) for p in paths], "operator")
    return {
        d.deployment: {a.module: a.replicas for a in d.assignments}
        for d in sorted(placed.result.placements, key=lambda d: d.deployment)
    }


def _cells(where: dict[str, int]) -> str:
    return ",".join(f"{m}={k}" for m, k in sorted(where.items())) or "-"


def comparison(live: dict[str, dict[str, int]], offline: dict[str, dict[str, int]]) -> list[str]:
    """The side-by-side table: live placement, offline model, same or not."""
    refs = sorted(set(live) | set(offline))
    rows = [("DEPLOYMENT", "LIVE (status)", "OFFLINE (--mode operator)", "")]
    for ref in refs:
        a, b = live.get(ref, {}), offline.get(ref, {})
        rows.append((ref, _cells(a), _cells(b), "same" if a == b else "DIFFERENT"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _why_different(fleet: Fleet, ref: str) -> list[str]:
    """What the live engine says about a deployment whose live placement differs."""
    ns, name = ref.split("/", 1)
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "aifactoryctl"),
            "explain",
            "-n",
            ns,
            name,
            "-o",
            "json",
            "--kubeconfig",
            str(fleet.kubeconfig(HUB)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        return [f"  (aifactoryctl explain failed: {proc.stderr.strip()})"]
    report = json.loads(proc.stdout)
    lines = [f"  {ref}: keep or move (live): {report['stability']}"]
    for m in report["modules"]:
        for reason in m["fewer"]:
            lines.append(f"    {m['module']}: {reason}")
    return lines


def report(fleet: Fleet) -> int:
    """Print the fleet, the deployments and live vs offline; 0 when they agree."""
    ctl = str(REPO / ".venv" / "bin" / "aifactoryctl")
    fleet_out = subprocess.run(
        [ctl, "fleet", "--kubeconfig", str(fleet.kubeconfig(HUB))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(fleet_out.stdout.rstrip() or fleet_out.stderr.rstrip())
    print()
    print(fleet.kubectl(HUB, "get", "infd", "-A").rstrip())
    print()
    live, offline = live_placements(fleet), offline_placements()
    print("Live placement (status) next to `aifactoryctl place -f samples/ --mode operator`:")
    for line in comparison(live, offline):
        print(line)
    differ = [ref for ref in sorted(set(live) | set(offline)) if live.get(ref) != offline.get(ref)]
    if not differ:
        print("Every deployment runs where the offline model of the operator says it settles.")
        return 0
    print(
        "Different: the operator keeps a running placement unless a fleet-wide plan lowers its "
        "cost by the hysteresis (10%), so a placement made while the fleet looked otherwise "
        "(a module not Ready yet, others' GPUs in use) can stay. The live engine says:"
    )
    for ref in differ:
        for line in _why_different(fleet, ref):
            print(line)
    return 1


def _hint(fleet: Fleet) -> None:
    root = fleet.root
    env = "" if root == REPO / ".fleet" else f"AIFACTORY_FLEET_ROOT={shown(root)} "
    print()
    print("demo: fleet and operator keep running. In your shell:")
    print(f"  {env}source hack/env.sh    # pinned kubectl + aifactoryctl on PATH, KUBECONFIG=hub")
    print("  aifactoryctl fleet")
    print("  aifactoryctl explain -n eu-chat eu-assistant")
    print("  aifactoryctl explain -n chat infr/assistant   # the model cascade")
    print("  kubectl get aifactory -A")
    print("  make demo-down                   # stop everything")


def _stop_operator(root: Path) -> None:
    pid_file = root / "operator.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def main() -> int:
    fleet = demo_fleet()
    if fleet.is_up():
        print(f"demo: reusing the running fleet under {shown(fleet.root)}/")
    else:
        print(
            f"demo: starting the local fleet under {shown(fleet.root)}/ "
            "(hub + reykjavik, paris, dallas)",
            flush=True,
        )
        took = fleet.up()
        print(f"demo: fleet up in {took:.1f}s", flush=True)
    fleet.register_members()
    install(fleet)
    _stop_operator(fleet.root)
    proc = start_operator(
        fleet, extra_env={"AIFACTORY_REBALANCE_INTERVAL": str(DEMO_REBALANCE_INTERVAL)}
    )
    (fleet.root / "operator.pid").write_text(str(proc.pid))
    print(
        f"demo: operator running (pid {proc.pid}, log {shown(fleet.log_dir / 'operator.log')}, "
        f"rebalanceInterval {DEMO_REBALANCE_INTERVAL}s)",
        flush=True,
    )
    try:
        ports = json.loads((fleet.root / "operator.ports").read_text())
        _wait("the operator", lambda: _serving(ports["AIFACTORY_LIVENESS_PORT"]), 120, proc)
        apply_samples(fleet, SAMPLE_FILES[:3])
        print("demo: modules applied; waiting for every module to be Ready ...", flush=True)
        _wait(
            "every AIFactoryModule Ready",
            lambda: _kubectl_ok(
                fleet, "wait", "--for=condition=Ready", "afm", "--all", "--timeout=10s"
            ),
            180,
            proc,
        )
        apply_samples(fleet, SAMPLE_FILES[3:])
        print("demo: deployments applied; waiting until the operator has settled ...", flush=True)
        wait_settled(fleet, proc)
    except FleetError as exc:
        print(f"demo: {exc} (log: {shown(fleet.log_dir / 'operator.log')})", file=sys.stderr)
        return 1
    print("demo: settled (a fleet-wide plan made after every deployment was Ready moves nothing)")
    print()
    code = report(fleet)
    _hint(fleet)
    return code


def down() -> int:
    fleet = demo_fleet()
    _stop_operator(fleet.root)
    fleet.down()
    print("demo: operator and fleet stopped")
    return 0


if __name__ == "__main__":
    command = sys.argv[1:]
    if command == ["down"]:
        sys.exit(down())
    if command == ["report"]:
        sys.exit(report(demo_fleet()))
    sys.exit(main())
