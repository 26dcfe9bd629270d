"""`aifactoryctl validate`: check manifests offline, for CI pipelines.

    aifactoryctl validate -f samples/ [-f more.yaml ...] [-o text|json]

Reads YAML as kubectl does and checks each document as the apiserver would with the
aifactory.dev CRDs installed (types, unknown fields, bounds, enums and every CEL rule), plus
what only the admission webhook and the operator can check (ISO 3166-2 membership, exact
duplicates). Namespace and PriorityClass get a minimal check; other kinds are listed as
skipped. Exit 0 when every document is valid, 1 otherwise, with every problem listed.
"""

from __future__ import annotations

import argparse
import json
import sys

from aifactory.cli.manifests import check_paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `validate` subcommand."""
    p = sub.add_parser(
        "validate",
        help="check manifests offline as the apiserver would (exit 1 on any problem)",
        description="Check AIFactoryModule, InferenceDeployment and SovereigntyPolicy manifests "
        "(and minimally Namespace and PriorityClass) without a cluster. YAML is read as kubectl "
        'reads it, so an unquoted NO is the boolean false: write country: "NO".',
    )
    p.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="manifest file or directory, or - for standard input (repeatable)",
    )
    p.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="read directories given with -f recursively, as kubectl -R does",
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every problem (and every skipped document); exit 0 only when there is none."""
    report = check_paths(args.paths, recursive=args.recursive)
    if args.output == "json":
        doc = {
            "valid": report.ok,
            "documents": report.documents,
            "validDocuments": report.valid,
            "problems": report.problems,
            "skipped": report.skipped,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if report.ok else 1
    for line in report.skipped:
        print(line)
    for line in report.problems:
        print(f"error: {line}")
    invalid = report.documents - report.valid - len(report.skipped)
    documents = f"{report.documents} document{'' if report.documents == 1 else 's'}"
    summary = (
        f"{documents}: {report.valid} valid, {max(invalid, 0)} invalid, "
        f"{len(report.skipped)} skipped"
    )
    if report.ok:
        print(summary)
        return 0
    print(summary, file=sys.stderr)
    return 1
