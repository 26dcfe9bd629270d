"""`python -m aifactory`: run the operator against the current kubeconfig or in-cluster account.

This is also the container's command. Settings are validated before kopf starts, so a bad
value stops the process with one clear message instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aifactory.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aifactory", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import kopf

    # kopf's own log setup prefixes object messages with [namespace/name]
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    import aifactory.controllers  # noqa: F401  registers the handlers

    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    kopf.run(
        clusterwide=True,
        liveness_endpoint=liveness,
        standalone=settings.standalone,
        priority=settings.peering_priority,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
