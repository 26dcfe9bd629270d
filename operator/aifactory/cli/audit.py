"""`aifactoryctl audit`: the operator's decision records and compliance evidence.

    aifactoryctl audit log [-n NS] [NAME] [--since 24h] [--reason R] [-o table|wide|json]
    aifactoryctl audit verify [--public-key FILE] [--key-secret NS/NAME[:KEY]]
                              [--require-signatures] [-o text|json]
    aifactoryctl audit report [--since 24h] [-o table|json]

`log` prints PlacementRecords, oldest first: what ran before and after each placement change
and why. `verify` recomputes every record's SHA-256, every link to the record before it, the
sequence and write order, and signatures when a public key is given, and names the first
broken link (exit 1). `report` sums replica-hours per data classification and country over a
period from the records, then lists the current OpenReports compliance results.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from aifactory.api.record import PlacementRecord
from aifactory.audit.chain import load_public_key, parse_time, verify_chain
from aifactory.audit.summary import where_ran
from aifactory.cli.day2 import Hub, HubError, _connection, _fmt, _guarded, _hub, _table, _wrapped

RECORDS = PlacementRecord.PLURAL
DEFAULT_SIGNING_KEY = "ed25519.pem"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: datetime) -> datetime:
    """`90s`, `15m`, `24h`, `7d` ago, or an RFC 3339 time."""
    m = _DURATION.match(value.strip())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    t = parse_time(value.strip())
    if t is None:
        raise argparse.ArgumentTypeError(
            f"--since {value!r}: expected a duration (90s, 15m, 24h, 7d) or an RFC 3339 time"
        )
    return t


def _records(hub: Hub, namespace: str | None = None, name: str | None = None) -> list[Any]:
    selector = []
    if namespace and len(namespace) <= 63:
        selector.append(f"aifactory.dev/namespace={namespace}")
    if name and len(name) <= 63:
        selector.append(f"aifactory.dev/inference-deployment={name}")
    items = hub.list_cluster(RECORDS, label_selector=",".join(selector))
    out = []
    for obj in items:
        dep = (obj.get("spec") or {}).get("deployment") or {}
        if namespace and dep.get("namespace") != namespace:
            continue
        if name and dep.get("name") != name:
            continue
        out.append(obj)
    return sorted(out, key=lambda o: int((o.get("spec") or {}).get("sequence") or 0))


def _cells(cells: Sequence[dict[str, Any]] | None) -> str:
    per: dict[str, int] = {}
    for c in cells or []:
        per[c["module"]] = per.get(c["module"], 0) + int(c.get("replicas") or 0)
    return ",".join(f"{m}={k}" for m, k in sorted(per.items()) if k) or "-"


# ---------------------------------------------------------------------------------- log
def run_log(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    now = datetime.now(UTC)
    since = parse_since(args.since, now) if args.since else None
    namespace = args.namespace or ("default" if args.name else None)
    items = _records(_hub(args), namespace, args.name)
    picked = []
    for obj in items:
        spec = obj.get("spec") or {}
        t = parse_time(str(spec.get("time", "")))
        if since is not None and (t is None or t < since):
            continue
        if args.reason and spec.get("reason") != args.reason:
            continue
        picked.append(obj)
    if args.output == "json":
        out.write(
            json.dumps(
                [{"name": o["metadata"]["name"], **(o.get("spec") or {})} for o in picked],
                indent=2,
            )
            + "\n"
        )
        return 0
    if not picked:
        out.write("no placement records" + (" in that period" if since else "") + "\n")
        return 0
    wide = args.output == "wide"
    head = ["SEQ", "DECIDED", "DEPLOYMENT", "REASON", "BEFORE", "AFTER", "COST"]
    if wide:
        head += ["PREVIOUS", "GAP", "MESSAGE"]
    rows = [tuple(head)]
    for o in picked:
        spec = o.get("spec") or {}
        dep = spec.get("deployment") or {}
        cost = spec.get("cost") or {}
        row = [
            str(spec.get("sequence")),
            str(spec.get("time", ""))[:19].replace("T", " "),
            f"{dep.get('namespace')}/{dep.get('name')}",
            str(spec.get("reason", "")),
            _cells(spec.get("before")),
            _cells(spec.get("after")),
            _fmt(cost.get("total"), 3),
        ]
        if wide:
            gap = (spec.get("fleetPlan") or {}).get("gap")
            row += [
                _fmt(cost.get("previousTotal"), 3),
                "-" if gap is None else f"{gap:.2%}",
                str(spec.get("message", "")),
            ]
        rows.append(tuple(row))
    _table(rows, out, sep="  ", wrap_last=wide)
    return 0


# ---------------------------------------------------------------------------------- verify
def _keys(args: argparse.Namespace, hub: Hub | None) -> list[Any]:
    keys = []
    for path in args.public_key or []:
        try:
            keys.append(load_public_key(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:
            raise HubError(f"--public-key {path}: {exc}") from None
    for ref in args.key_secret or []:
        assert hub is not None
        where, _, key = ref.partition(":")
        ns, _, name = where.rpartition("/")
        data = hub.secret_data(ns or "aifactory-system", name)
        raw = data.get(key or DEFAULT_SIGNING_KEY)
        if raw is None:
            raise HubError(
                f"--key-secret {ref}: the Secret has no key {key or DEFAULT_SIGNING_KEY}"
            )
        try:
            keys.append(load_public_key(base64.b64decode(raw)))
        except ValueError as exc:
            raise HubError(f"--key-secret {ref}: {exc}") from None
    return keys


def run_verify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    items = _records(hub)
    verdict = verify_chain(items, _keys(args, hub), require_signatures=args.require_signatures)
    if args.output == "json":
        out.write(
            json.dumps(
                {
                    "ok": verdict.ok,
                    "records": verdict.records,
                    "first": verdict.first,
                    "last": verdict.last,
                    "headHash": verdict.head_hash,
                    "signed": verdict.signed,
                    "signaturesChecked": verdict.signatures_checked,
                    "firstBroken": str(verdict.first_broken) if verdict.first_broken else None,
                    "findings": [
                        {
                            "name": f.name,
                            "sequence": f.sequence,
                            "problem": f.problem,
                            "broken": f.broken,
                        }
                        for f in verdict.findings
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        return 0 if verdict.ok else 1
    if not verdict.records:
        out.write("no placement records on the hub: nothing to verify\n")
        return 0
    out.write(
        f"chain: {verdict.records} records, sequences {verdict.first}..{verdict.last}; "
        f"head hash {verdict.head_hash}\n"
    )
    if verdict.signatures_checked:
        out.write(f"signatures: {verdict.signed}/{verdict.records} signed, checked\n")
    elif verdict.signed:
        out.write(
            f"signatures: {verdict.signed}/{verdict.records} signed, not checked (give "
            "--public-key FILE or --key-secret NS/NAME)\n"
        )
    else:
        out.write("signatures: none\n")
    broken = verdict.first_broken
    if broken is not None:
        _wrapped(f"BROKEN at {broken}", out, indent="", more="  ")
    notes = [f for f in verdict.findings if f is not broken]
    for f in notes:
        _wrapped(("broken: " if f.broken else "note: ") + str(f), out, indent="  ", more="    ")
    if broken is None:
        out.write("OK: every record's hash, link and sequence verifies\n")
        return 0
    return 1


# ---------------------------------------------------------------------------------- report
def _reports(hub: Hub) -> list[dict[str, Any]] | None:
    try:
        return hub.list_cluster(
            "reports",
            label_selector="app.kubernetes.io/managed-by=aifactory-operator",
            group="openreports.io",
            version="v1alpha1",
        )
    except HubError:
        return None


def run_report(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    hub = _hub(args)
    now = datetime.now(UTC)
    since = parse_since(args.since, now)
    rows, notes = where_ran(_records(hub), since, now)
    total = sum(r.replica_hours for r in rows)
    reports = _reports(hub)
    if args.output == "json":
        out.write(
            json.dumps(
                {
                    "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "until": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "whereRan": [r.to_dict(total) for r in rows],
                    "notes": notes,
                    "compliance": [
                        {
                            "namespace": r["metadata"]["namespace"],
                            "deployment": (r.get("scope") or {}).get("name"),
                            "summary": r.get("summary") or {},
                        }
                        for r in reports or []
                    ],
                },
                indent=2,
            )
            + "\n"
        )
        return 0
    out.write(
        f"Where each data classification ran, {since:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} "
        "UTC (from the placement records):\n"
    )
    if not rows:
        out.write("  no placements recorded in that period\n")
    else:
        table: list[tuple[str, ...]] = [
            ("CLASSIFICATION", "COUNTRY", "REPLICA-HOURS", "SHARE", "MODULES", "DEPLOYMENTS")
        ]
        for r in rows:
            share = r.replica_hours / total if total else 0.0
            table.append(
                (
                    r.classification,
                    r.country,
                    f"{r.replica_hours:.2f}",
                    f"{share:.1%}",
                    ",".join(sorted(r.modules)),
                    ",".join(sorted(r.deployments)),
                )
            )
        _table(table, out, sep="  ", wrap_last=True, indent="  ")
    for n in notes:
        _wrapped(f"note: {n}", out, indent="  ", more="    ")
    out.write("\nCompliance now (OpenReports Reports written by the operator):\n")
    if reports is None:
        out.write("  the openreports.io API is not installed on the hub\n")
    elif not reports:
        out.write("  no Reports (no deployment is bound by a SovereigntyPolicy)\n")
    else:
        counts: list[tuple[str, ...]] = [
            ("NAMESPACE", "DEPLOYMENT", "PASS", "FAIL", "WARN", "ERROR", "SKIP")
        ]
        ordered = sorted(reports, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        for rep in ordered:
            found = rep.get("summary") or {}
            counts.append(
                (
                    rep["metadata"]["namespace"],
                    str((rep.get("scope") or {}).get("name", rep["metadata"]["name"])),
                    *(str(found.get(k, 0)) for k in ("pass", "fail", "warn", "error", "skip")),
                )
            )
        _table(counts, out, sep="  ", indent="  ")
        failing = [
            (rep, x)
            for rep in ordered
            for x in rep.get("results") or []
            if x.get("result") in ("fail", "warn", "error")
        ]
        for rep, x in failing:
            _wrapped(
                f"{x.get('result')}: {rep['metadata']['namespace']}/"
                f"{(rep.get('scope') or {}).get('name')} {x.get('policy')} {x.get('rule')}: "
                f"{x.get('message')}",
                out,
                indent="  ",
                more="    ",
            )
    return 0


# ---------------------------------------------------------------------------------- wiring
def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit log`, `audit verify` and `audit report`."""
    audit = sub.add_parser(
        "audit",
        help="decision records (log, verify) and compliance evidence (report)",
        description="The operator's hash-chained PlacementRecords and OpenReports evidence.",
    )
    asub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    asub.required = True

    p = asub.add_parser(
        "log",
        help="placement changes, oldest first: before, after, reason, cost",
        description="Print PlacementRecords, oldest first (all, one namespace, or one "
        "InferenceDeployment).",
    )
    _connection(p)
    p.add_argument("name", nargs="?", help="InferenceDeployment name (with -n)")
    p.add_argument("-n", "--namespace", help="only this namespace (NAME alone means default)")
    p.add_argument("--since", help="only records decided since: 90s, 15m, 24h, 7d or RFC 3339")
    p.add_argument("--reason", help="only this reason, e.g. Failover, Rebalanced")
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table")
    p.set_defaults(func=_guarded(run_log))

    p = asub.add_parser(
        "verify",
        help="check the chain: hashes, links, sequence, signatures; names the first broken link",
        description="Recompute every record's SHA-256 and link; exit 1 naming the first broken "
        "one. Signatures are checked with --public-key or --key-secret.",
    )
    _connection(p)
    p.add_argument(
        "--public-key",
        action="append",
        metavar="FILE",
        help="Ed25519 public key (PEM, or 32 bytes raw/base64); repeat for rotated keys",
    )
    p.add_argument(
        "--key-secret",
        action="append",
        metavar="NS/NAME[:KEY]",
        help=f"read the signing key from this Secret (key {DEFAULT_SIGNING_KEY} by default) "
        "and check signatures with its public half",
    )
    p.add_argument(
        "--require-signatures", action="store_true", help="an unsigned record is a broken link"
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_guarded(run_verify))

    p = asub.add_parser(
        "report",
        help="where each data classification ran, by country; compliance results now",
        description="Replica-hours per data classification and country over a period (from the "
        "records), then the OpenReports compliance results the operator keeps.",
    )
    _connection(p)
    p.add_argument("--since", default="24h", help="period start: 24h (default), 7d, RFC 3339")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=_guarded(run_report))


__all__ = ["parse_since", "register", "run_log", "run_report", "run_verify"]
