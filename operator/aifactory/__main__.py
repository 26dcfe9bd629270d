"""`python -m aifactory`: run the operator against the current kubeconfig or in-cluster account.

This is also the container's command. Settings are validated and the HTTP ports bound before
kopf starts, so a bad value or a port already in use stops the process at once with one clear
message and a non-zero exit, instead of a traceback or a handler retrying forever.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from aifactory.settings import SettingsError, load_settings

ENDPOINTS = None


def _port_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


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

    from aifactory.controllers import setup
    from aifactory.serving import Endpoints, serve

    endpoints = Endpoints()
    ports = [
        ("metrics_port (AIFACTORY_METRICS_PORT)", settings.metrics_port, settings.webhook_listen),
        ("liveness_port (AIFACTORY_LIVENESS_PORT)", settings.liveness_port, "0.0.0.0"),
    ]
    if settings.webhook_enabled:
        ports.append(
            (
                "webhook_port (AIFACTORY_WEBHOOK_PORT)",
                settings.webhook_port,
                settings.webhook_listen,
            )
        )
    for name, port, host in ports:
        if port and not _port_free(port, host):
            print(f"error: {name} {port} is already in use on {host}", file=sys.stderr)
            return 3
    if settings.metrics_port:
        try:
            serve(settings.metrics_port, endpoints)
        except OSError as exc:
            print(
                f"error: cannot serve metrics on port {settings.metrics_port}: {exc}",
                file=sys.stderr,
            )
            return 3

    # kopf's own log setup prefixes object messages with [namespace/name]
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # one "Handler succeeded" line per watch event drowns everything else at fleet scale
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    setup(registry, settings, endpoints)

    liveness = (
        f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    )
    kopf.run(
        registry=registry,
        clusterwide=True,
        liveness_endpoint=liveness,
        standalone=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
