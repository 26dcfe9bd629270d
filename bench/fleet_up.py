"""How long the local fleet takes to come up with warm binary caches (target: under 30 s).

    python bench/fleet_up.py [--runs 3]

Measures `Fleet.up()` (processes started, every apiserver /readyz, controller manager and
scheduler /healthz, every GPU node Ready, default ServiceAccount present) for the default
topology (hub + 2 members) and the sample topology (hub + 3 members, 4 node-pool modules,
46 kwok GPU nodes), each in a scratch directory, and prints the median per topology.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hack.fleet import Fleet, FleetConfig
from hack.fleet.topology import config_from_modules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for label in ("default (hub + 2 members)", "samples (hub + 3 members, 4 node pools)"):
        times = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
                root = Path(tmp) / ".fleet"
                config = (
                    FleetConfig(root=root)
                    if label.startswith("default")
                    else config_from_modules(root=root)
                )
                fleet = Fleet(config, attached=True)
                try:
                    times.append(fleet.up())
                finally:
                    fleet.down()
        print(
            f"{label:<45} median {statistics.median(times):5.1f} s  "
            f"runs {', '.join(f'{t:.1f}' for t in times)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
