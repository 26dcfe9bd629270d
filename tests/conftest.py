"""Session fixtures: one real local fleet (hub + members) shared by every test that needs it.

The fleet is started once per test session by `hack.fleet` and torn down at the end. Set
AIFACTORY_REUSE_FLEET=1 to attach to a fleet already running under `.fleet/` (started with
`python -m hack.fleet up --modules samples/modules.yaml`) and leave it running afterwards; this
is for quick local iteration. AIFACTORY_FLEET_ROOT moves the fleet's directory (default
`.fleet`), so several fleets can run side by side (ports are always picked free).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hack.fleet import Fleet
from hack.fleet.topology import config_from_modules

REPO = Path(__file__).resolve().parents[1]


class Kubectl:
    """Runs the fleet's own kubectl against one cluster of the fleet."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def __call__(
        self,
        *args: str,
        cluster: str = "hub",
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(self._fleet.binary("kubectl")),
            "--kubeconfig",
            str(self._fleet.kubeconfig(cluster)),
            *args,
        ]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    reuse = os.environ.get("AIFACTORY_REUSE_FLEET") == "1"
    # the sample fleet: members reykjavik, paris, dallas; node-pool modules on the hub
    root = Path(os.environ.get("AIFACTORY_FLEET_ROOT") or REPO / ".fleet")
    f = Fleet(config_from_modules(REPO / "samples" / "modules.yaml", root=root), attached=not reuse)
    if reuse and f.is_up():
        yield f
        return
    f.up()
    f.register_members()
    try:
        yield f
    finally:
        if not reuse:
            f.down()


@pytest.fixture(scope="session")
def kubectl(fleet: Fleet) -> Kubectl:
    return Kubectl(fleet)
