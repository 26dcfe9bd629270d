"""Entry point of `aifactoryctl` (declared in pyproject.toml as aifactory.cli.main:main)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from aifactory import __version__
from aifactory.cli import audit, crds, day2, place, simulate, validate, whatif

#: Subcommand groups, in the order `--help` lists them.
GROUPS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    place.register,
    validate.register,
    simulate.register,
    whatif.register,
    crds.register,
    day2.register,
    audit.register,
)


#: What the kubectl plugin answers to: `kubectl aifactory ...` runs `kubectl-aifactory`.
KUBECTL_PROG = "kubectl aifactory"


def build_parser(prog: str = "aifactoryctl") -> argparse.ArgumentParser:
    """The full parser; exposed so tests and docs can inspect it."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Place inference workloads on AI factory modules by latency, energy and "
        "data sovereignty.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in GROUPS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "aifactoryctl") -> int:
    """Parse arguments and run the chosen subcommand; its return value is the exit code."""
    args = build_parser(prog).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def kubectl_plugin(argv: Sequence[str] | None = None) -> int:
    """`kubectl aifactory ...` (the `kubectl-aifactory` executable): the same subcommands as
    aifactoryctl, with kubectl's --kubeconfig and --context taken from the environment kubectl
    passes plugins (KUBECONFIG) like any other client."""
    return main(argv, prog=KUBECTL_PROG)


if __name__ == "__main__":
    sys.exit(main())
