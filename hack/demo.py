"""`make demo`: the sample fleet on real control planes, with the operator placing the samples.

Steps: local fleet derived from samples/modules.yaml (three member clusters, four node-pool
modules on the hub), member kubeconfigs registered as Secrets, CRDs and samples applied, the
operator started against the hub, then the placements printed once every InferenceDeployment
is Ready. The fleet and the operator keep running afterwards (`make demo-down` stops both).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hack.fleet import HUB, Fleet, FleetError
from hack.fleet.topology import config_from_modules

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / ".fleet"
OPERATOR_PID = ROOT / "operator.pid"


def start_operator(
    fleet: Fleet, *, log_name: str = "operator.log", extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run `python -m aifactory` against the hub, logging to .fleet/logs/."""
    env = {**os.environ, "KUBECONFIG": str(fleet.kubeconfig(HUB)), **(extra_env or {})}
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
    return proc


def install(fleet: Fleet, crds: Path = REPO / "crds") -> None:
    """The CRDs, waited until Established so objects of the new kinds can be applied."""
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


SAMPLE_FILES = ("namespaces.yaml", "policies.yaml", "modules.yaml", "deployments.yaml")


def apply_samples(fleet: Fleet, files: tuple[str, ...] = SAMPLE_FILES) -> None:
    """Server-side apply sample files in dependency order (namespaces before what lives in them)."""
    for name in files:
        fleet.kubectl(
            HUB, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "samples" / name)
        )


def placements_table(fleet: Fleet) -> str:
    data = json.loads(fleet.kubectl(HUB, "get", "infd", "-A", "-o", "json"))
    lines = [f"{'DEPLOYMENT':<28} {'READY':>7}  PLACEMENTS"]
    for item in data["items"]:
        st = item.get("status", {})
        where = ", ".join(
            f"{p['module']}={p.get('readyReplicas', 0)}/{p['replicas']}"
            for p in st.get("placements", [])
        )
        ref = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
        ready = f"{st.get('readyReplicas', 0)}/{st.get('replicas', 0)}"
        lines.append(f"{ref:<28} {ready:>7}  {where}")
    return "\n".join(lines)


def main() -> int:
    fleet = Fleet(config_from_modules(REPO / "samples" / "modules.yaml", root=ROOT))
    if fleet.is_up():
        print("demo: reusing the running fleet under .fleet/")
    else:
        print("demo: starting the local fleet (hub + reykjavik, paris, dallas) ...", flush=True)
        took = fleet.up()
        print(f"demo: fleet up in {took:.1f}s", flush=True)
    fleet.register_members()
    install(fleet)
    if OPERATOR_PID.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(OPERATOR_PID.read_text()), signal.SIGTERM)
    proc = start_operator(fleet)
    OPERATOR_PID.write_text(str(proc.pid))
    print(f"demo: operator running (pid {proc.pid}, log .fleet/logs/operator.log)", flush=True)
    apply_samples(fleet)
    print(
        "demo: samples applied; waiting for every InferenceDeployment to be Ready ...", flush=True
    )
    deadline = time.monotonic() + 240
    while True:
        try:
            fleet.kubectl(
                HUB, "wait", "--for=condition=Ready", "infd", "--all", "-A", "--timeout=10s"
            )
            break
        except FleetError:
            if proc.poll() is not None:
                print("demo: the operator exited; see .fleet/logs/operator.log", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(placements_table(fleet))
                print("demo: timed out waiting for Ready", file=sys.stderr)
                return 1
    print()
    print(fleet.kubectl(HUB, "get", "afm"))
    print(fleet.kubectl(HUB, "get", "infd", "-A"))
    print(placements_table(fleet))
    print()
    print("demo: fleet and operator keep running. Try:")
    print("  kubectl --kubeconfig .fleet/hub.kubeconfig get aifactory -A")
    print(
        "  kubectl --kubeconfig .fleet/dallas.kubeconfig get deploy,pods -A "
        "-l app.kubernetes.io/managed-by=aifactory-operator"
    )
    print("  .venv/bin/aifactoryctl place -f samples/      # the same decision, offline")
    print("  make demo-down                                # stop everything")
    return 0


def down() -> int:
    if OPERATOR_PID.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(OPERATOR_PID.read_text()), signal.SIGTERM)
        OPERATOR_PID.unlink()
    Fleet(config_from_modules(REPO / "samples" / "modules.yaml", root=ROOT)).down()
    print("demo: operator and fleet stopped")
    return 0


if __name__ == "__main__":
    sys.exit(down() if sys.argv[1:] == ["down"] else main())
