"""Measured round-trip times from text: a CSV file, or the data of a ConfigMap.

Two CSV shapes are accepted, told apart by the header:

* **pairs**: a header with the columns `region`, `module` and `rttMs` (any order, extra columns
  ignored), one row per measured pair:

      region,module,rttMs
      eu-west,paris,11.8

* **matrix**: the first column holds demand region names, the header holds module names (its
  first cell is free text, e.g. `region` or `Source`), each cell the RTT in ms of (row, column);
  an empty cell means "not measured" and leaves that pair to the model:

      region,paris,oslo
      eu-west,11.8,
      eu-north,31.0,4.2

Blank lines and lines starting with `#` are skipped, so a file can carry its attribution.
Everything here is pure (text in, `RttTable` out) so the CLI (`--rtt FILE.csv`) and the operator
(a ConfigMap's `data`) share one parser and one set of error messages.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from aifactory.placement.rtt import RttTable

#: Reason of RttTableError, CamelCase so it can go straight into a condition.
REASON_MALFORMED = "MalformedRttTable"

#: Column names of the pairs shape.
PAIR_COLUMNS = ("region", "module", "rttMs")
#: ConfigMap keys holding a table end with this suffix (others, e.g. a README, are skipped).
CONFIG_MAP_SUFFIX = ".csv"
#: Problems listed in one error before "... and N more".
MAX_PROBLEMS = 20


class RttTableError(ValueError):
    """The text is not a valid RTT table. `problems` lists each, with its line number."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.reason = REASON_MALFORMED
        self.source = source
        self.problems = tuple(problems)
        shown = list(self.problems[:MAX_PROBLEMS])
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more")
        super().__init__(f"{source}: " + "; ".join(shown))


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """CSV rows with their 1-based line numbers, without blank and `#` comment lines."""
    kept = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.reader(io.StringIO("\n".join(line for _, line in kept)))
    return [(kept[i][0], [c.strip() for c in row]) for i, row in enumerate(reader)]


def _ms(cell: str, where: str, problems: list[str]) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        problems.append(f"{where}: {cell!r} is not a number of milliseconds")
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(f"{where}: RTT must be a finite number >= 0, got {cell}")
        return None
    return value


def parse_rtt_csv(text: str, *, source: str = "<rtt>") -> RttTable:
    """Parse a pairs or matrix CSV (see the module docstring) into an RttTable.

    `source` names the input in errors and in the table (a file name, "configmap ns/name").
    Raises RttTableError listing every problem found (bad header, unknown shape, cells that are
    not numbers >= 0, ragged rows, a pair given twice, empty names), never a partial table.
    """
    rows = _rows(text)
    if not rows:
        raise RttTableError(source, ["no header row: the table is empty"])
    line, header = rows[0]
    if all(c in header for c in PAIR_COLUMNS):
        pairs, problems = _parse_pairs(header, rows[1:])
    else:
        pairs, problems = _parse_matrix(line, header, rows[1:])
    if problems:
        raise RttTableError(source, problems)
    if not pairs:
        raise RttTableError(source, ["no measured pair: every row or cell is empty"])
    return RttTable(pairs, source=source)


def _parse_pairs(
    header: list[str], rows: list[tuple[int, list[str]]]
) -> tuple[dict[tuple[str, str], float], list[str]]:
    col = {name: header.index(name) for name in PAIR_COLUMNS}
    width = max(col.values()) + 1
    problems: list[str] = []
    pairs: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], int] = {}
    for line, row in rows:
        where = f"line {line}"
        if len(row) < width:
            problems.append(f"{where}: expected {len(header)} columns, got {len(row)}")
            continue
        region, module = row[col["region"]], row[col["module"]]
        if not region or not module:
            problems.append(f"{where}: region and module must not be empty")
            continue
        ms = _ms(row[col["rttMs"]], where, problems)
        if ms is None:
            continue
        key = (region, module)
        if key in first:
            problems.append(f"{where}: {region} -> {module} already given on line {first[key]}")
            continue
        first[key] = line
        pairs[key] = ms
    return pairs, problems


def _parse_matrix(
    header_line: int, header: list[str], rows: list[tuple[int, list[str]]]
) -> tuple[dict[tuple[str, str], float], list[str]]:
    problems: list[str] = []
    modules = header[1:]
    if not modules:
        return {}, [
            f"line {header_line}: header must be either region,module,rttMs or a matrix "
            "header (a first cell, then one column per module)"
        ]
    seen: set[str] = set()
    for name in modules:
        if not name:
            problems.append(f"line {header_line}: empty module name in the header")
        elif name in seen:
            problems.append(f"line {header_line}: module {name} appears twice in the header")
        seen.add(name)
    pairs: dict[tuple[str, str], float] = {}
    regions: dict[str, int] = {}
    for line, row in rows:
        where = f"line {line}"
        if len(row) != len(header):
            problems.append(f"{where}: expected {len(header)} cells, got {len(row)}")
            continue
        region = row[0]
        if not region:
            problems.append(f"{where}: empty region name in the first column")
            continue
        if region in regions:
            problems.append(f"{where}: region {region} already given on line {regions[region]}")
            continue
        regions[region] = line
        for module, cell in zip(modules, row[1:], strict=True):
            if cell == "":
                continue
            ms = _ms(cell, f"{where}, column {module}", problems)
            if ms is not None and module:
                pairs[(region, module)] = ms
    return pairs, problems


def rtt_table_from_config_map(
    data: Mapping[str, str] | None, *, source: str = "configmap"
) -> RttTable:
    """The RTT table in a ConfigMap's `data`: every key ending in `.csv`, each a pairs or
    matrix CSV, merged. A pair given under two keys is an error (which one is right?).

    Raises RttTableError when no key ends in `.csv` or any table is invalid; the problems of
    every key are reported together, each prefixed with its key.
    """
    data = data or {}
    keys = sorted(k for k in data if k.endswith(CONFIG_MAP_SUFFIX))
    if not keys:
        raise RttTableError(source, [f"no data key ending in {CONFIG_MAP_SUFFIX}"])
    problems: list[str] = []
    merged: dict[tuple[str, str], float] = {}
    owner: dict[tuple[str, str], str] = {}
    for key in keys:
        try:
            table = parse_rtt_csv(data[key], source=key)
        except RttTableError as err:
            problems.extend(f"{key}: {p}" for p in err.problems)
            continue
        for pair, ms in table.pairs.items():
            if pair in owner:
                problems.append(f"{key}: {pair[0]} -> {pair[1]} already given in {owner[pair]}")
                continue
            owner[pair] = key
            merged[pair] = ms
    if problems:
        raise RttTableError(source, problems)
    return RttTable(merged, source=source)


def rtt_table_from_rows(
    rows: Iterable[tuple[str, str, float]], *, source: str = "<rtt>"
) -> RttTable:
    """Validate (region, module, ms) rows from any other source (e.g. a Prometheus result) with
    the same rules as the CSV parser; raises RttTableError listing every bad row."""
    problems: list[str] = []
    pairs: dict[tuple[str, str], float] = {}
    for n, (region, module, value) in enumerate(rows, start=1):
        where = f"row {n} ({region} -> {module})"
        if not region or not module:
            problems.append(f"row {n}: region and module must not be empty")
            continue
        ms = _ms(str(value), where, problems)
        if ms is None:
            continue
        if (region, module) in pairs:
            problems.append(f"{where}: pair given twice")
            continue
        pairs[(region, module)] = ms
    if problems:
        raise RttTableError(source, problems)
    return RttTable(pairs, source=source)


def unmatched_names(
    table: RttTable, regions: Iterable[str], modules: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Region and module names of the table that match nothing in the fleet's manifests
    (sorted): most likely typos, worth a warning, never an error (a table may cover more)."""
    return (
        sorted(table.regions - set(regions)),
        sorted(table.modules - set(modules)),
    )


__all__ = [
    "CONFIG_MAP_SUFFIX",
    "PAIR_COLUMNS",
    "REASON_MALFORMED",
    "RttTableError",
    "parse_rtt_csv",
    "rtt_table_from_config_map",
    "rtt_table_from_rows",
    "unmatched_names",
]


def fetch_rtt(
    url: str,
    query: str,
    *,
    region_label: str = "region",
    module_label: str = "module",
    timeout_s: float = 5.0,
    now: datetime | None = None,
) -> RttTable:
    """Measured RTTs from a Prometheus instant query (e.g. blackbox-exporter probe durations
    turned into ms), one series per (region, module) with those two labels.

    Same client and error rules as live demand (`signals.demand`); raises RttTableError with
    the Prometheus problem or every bad series (values must be finite ms >= 0).
    """
    from aifactory.api.deployment import PrometheusDemandSource
    from aifactory.signals.demand import DemandSignalError, _query

    source = f"prometheus {url}"
    try:
        payload = _query(
            PrometheusDemandSource(
                url=url, query=query, region_label=region_label, timeout_seconds=timeout_s
            ),
            now,
        )
    except DemandSignalError as err:
        raise RttTableError(source, [f"{err.reason}: {err.message}"]) from None
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        raise RttTableError(source, ["the query must return an instant vector"])
    rows: list[tuple[str, str, float]] = []
    problems: list[str] = []
    for item in data.get("result") or []:
        metric = item.get("metric") or {} if isinstance(item, dict) else {}
        region, module = metric.get(region_label), metric.get(module_label)
        if not region or not module:
            problems.append(f"a series without {region_label!r} and {module_label!r} labels")
            continue
        try:
            rows.append((str(region), str(module), float(item["value"][1])))
        except (KeyError, IndexError, TypeError, ValueError):
            problems.append(f"{region} -> {module}: no numeric value")
    if problems:
        raise RttTableError(source, problems)
    return rtt_table_from_rows(rows, source=source)
