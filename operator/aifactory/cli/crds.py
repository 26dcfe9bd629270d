"""`aifactoryctl crds`: write the CustomResourceDefinitions generated from the API models."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `crds` subcommand."""
    p = sub.add_parser("crds", help="generate the aifactory.dev CRDs from the API models")
    p.add_argument("--out", type=Path, default=Path("crds"), help="output directory (default crds)")
    p.add_argument("--check", action="store_true", help="only report whether files are up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Delegate to the generator that lives with the models (imported lazily: it is heavier
    than the rest of the CLI needs)."""
    from aifactory.api import crds as generator

    argv = ["--out", str(args.out)]
    if args.check:
        argv.append("--check")
    return int(generator.main(argv))
