"""Entry point of `aifactoryctl` (declared in pyproject.toml as aifactory.cli.main:main)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from aifactory import __version__
from aifactory.cli import crds, day2, place, simulate, validate, whatif

#: Subcommand groups, in the order `--help` lists them.
GROUPS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    place.register,
    validate.register,
    simulate.register,
    whatif.register,
    crds.register,
    day2.register,
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser; exposed so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(
        prog="aifactoryctl",
        description="Place inference workloads on AI factory modules by latency, energy and "
        "data sovereignty.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in GROUPS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; its return value is the exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
