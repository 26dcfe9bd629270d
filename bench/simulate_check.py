"""Same answers, less work? Per policy: CPU seconds and a digest of every fleet solve's
placements plus the summary, for comparing two trees of the simulator.

    python bench/simulate_check.py --days 20                    # all five policies
    PYTHONPATH=/tmp/old/operator python bench/simulate_check.py # an older tree, same inputs

Optimisations of the replay must leave every digest unchanged (`git worktree add /tmp/old
REV` for the old tree). The machine's speed drifts by +-15% between identical runs, so
compare times back to back and take the least of several runs, or count instructions:
`valgrind --tool=callgrind python bench/simulate_check.py --days 3` and `--days 10`, and
subtract (imports and input loading cancel out). Never a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aifactory.simulation.replay as replay
from aifactory.simulation import POLICY_NAMES, SimulationConfig, build_timeline, load_scenario
from aifactory.simulation.series import load_carbon

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "simulation"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--start", default="2022-03-01")
    parser.add_argument("--policies", default=",".join(POLICY_NAMES))
    args = parser.parse_args(argv)
    solves: list[str] = []
    solve = replay.place_prepared

    def recorded(*a: Any, **kw: Any) -> Any:
        res = solve(*a, **kw)
        solves.append(
            repr(
                [
                    (
                        d.deployment,
                        d.stability,
                        [(x.module, x.replicas, sorted(x.gpus.items())) for x in d.assignments],
                    )
                    for d in res.placements
                ]
            )
        )
        return res

    replay.place_prepared = recorded  # type: ignore[assignment]
    scenario = load_scenario([SAMPLE])
    carbon = load_carbon([SAMPLE / "carbon-2022.csv.gz"])
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    for name in (n for n in args.policies.split(",") if n):
        config = SimulationConfig.from_operator(policies=(name,), workers=1)
        built = build_timeline(
            scenario, config, start=start, end=start + timedelta(days=args.days), carbon=carbon
        )
        solves.clear()
        began = time.process_time()
        result = replay.run_policies(scenario, built.timeline, config, (name,))[0]
        took = time.process_time() - began
        summary = result.summary()
        summary.pop("seconds", None)
        digest = hashlib.sha256(
            (json.dumps(summary, sort_keys=True, default=str) + "".join(solves)).encode()
        ).hexdigest()[:12]
        print(f"{name:18s} {took:7.2f} s  {len(solves):5d} solves  digest {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
