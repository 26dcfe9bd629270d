"""What a simulation found, as files: JSON and CSV summaries, per-step series, plots, HTML.

* `document`: the JSON document (`aifactoryctl simulate -o json`): period, settings, inputs,
  one summary per policy (units in the key names: kgCO2e, kWh, ms, shares 0..1, replica-hours),
  the engine against each baseline, rule findings, and optionally the per-step series.
* `write_outputs(DIR)`: `summary.json` (the document without series), `summary.csv` (one row
  per policy), `series.csv` (one row per step and policy), `simulation.json` (with series),
  `carbon.png|svg`, `latency.png|svg`, `tradeoff.png|svg`.
* `write_html`: one self-contained page (plots embedded) for people deciding whether to turn
  carbon awareness on.

Plots use matplotlib's Agg backend and fixed metadata, so the same run gives the same files.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aifactory.simulation.policies import ENGINE, POLICIES
from aifactory.simulation.replay import PolicyResult, SimulationConfig

#: Per-step columns of series.csv / the JSON series, with their unit.
SERIES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("gCO2e", "gCO2e emitted in the step"),
    ("kWh", "energy of the GPUs held, PUE included"),
    ("meanRttMs", "mean RTT of the requests served (ms)"),
    ("withinSloShare", "share of the demand served within its SLO"),
    ("replicas", "replicas placed (time-weighted mean)"),
    ("unplacedReplicas", "replicas wanted but not placed (mean)"),
    ("gpus", "GPUs held (mean)"),
    ("moved", "replicas moved (voluntary rebalancing)"),
    ("rescheduled", "replicas re-placed because a module was lost or forbidden"),
    ("gpuUtilisation", "requests served / what the placed replicas can serve"),
)

_SVG_META = {"Date": None, "Creator": None}
_PNG_META = {"Software": None}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def per_step(result: PolicyResult, step_s: float) -> dict[str, np.ndarray]:
    """The `SERIES_COLUMNS` of one policy, one value per step (NaN where undefined)."""
    s = result.series
    hours = step_s / 3600.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "gCO2e": s["gco2e"],
            "kWh": s["kwh"],
            "meanRttMs": np.where(s["served"] > 0, s["rttWeighted"] / s["served"], np.nan),
            "withinSloShare": np.where(s["demand"] > 0, s["withinSlo"] / s["demand"], np.nan),
            "replicas": s["replicaHours"] / hours,
            "unplacedReplicas": s["unplacedReplicaHours"] / hours,
            "gpus": s["gpuHours"] / hours,
            "moved": s["moved"],
            "rescheduled": s["rescheduled"],
            "gpuUtilisation": np.where(s["capacity"] > 0, s["served"] / s["capacity"], np.nan),
        }


def comparison(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The engine against every other policy: what it saved (kgCO2e and share of the
    baseline's) and what it cost or gained in latency (mean and p95 RTT, ms; positive = the
    engine is slower), SLO share and moves. Empty without an `engine` run."""
    by = {s["policy"]: s for s in summaries}
    eng = by.get(ENGINE)
    if eng is None:
        return []
    out = []
    for name, base in by.items():
        if name == ENGINE:
            continue
        saved = base["kgCO2e"] - eng["kgCO2e"]

        def delta(key: str, base: Mapping[str, Any] = base) -> float | None:
            a, b = eng.get(key), base.get(key)
            return None if a is None or b is None else round(a - b, 6)

        out.append(
            {
                "baseline": name,
                "kgCO2eSaved": round(saved, 3),
                "savedShare": round(saved / base["kgCO2e"], 6) if base["kgCO2e"] else None,
                "meanRttDeltaMs": delta("meanRttMs"),
                "p95RttDeltaMs": delta("p95RttMs"),
                "withinSloDelta": delta("withinSloShare"),
                "replicasMovedDelta": eng["replicasMoved"] - base["replicasMoved"],
                "unplacedReplicaHoursDelta": delta("unplacedReplicaHours"),
            }
        )
    return out


def sentences(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The comparison in plain words, one sentence per baseline."""
    out = []
    for r in rows:
        saved = r["kgCO2eSaved"]
        share = r["savedShare"]
        verb = "saved" if saved >= 0 else "emitted"
        amount = f"{abs(saved):,.0f} kgCO2e" + (
            f" ({abs(share) * 100:.1f}%)" if share is not None else ""
        )
        text = f"Against {r['baseline']}, the engine {verb} {amount}"
        if saved < 0:
            text += " more"
        lat = r["meanRttDeltaMs"]
        if lat is not None:
            if abs(lat) < 0.05:
                text += ", at the same mean RTT"
            elif lat > 0:
                text += f", at {lat:.1f} ms more mean RTT"
            else:
                text += f", with {-lat:.1f} ms less mean RTT"
            p95 = r["p95RttDeltaMs"]
            if p95 is not None and abs(p95) >= 0.05:
                text += f" ({'+' if p95 > 0 else '-'}{abs(p95):.1f} ms at p95)"
        slo = r["withinSloDelta"]
        if slo is not None and abs(slo) >= 1e-4:
            text += f"; {abs(slo) * 100:.2f} points {'more' if slo > 0 else 'less'} demand "
            text += "served within the SLO"
        moved = r["replicasMovedDelta"]
        if moved:
            text += f"; {abs(moved):,} {'more' if moved > 0 else 'fewer'} replicas moved"
        out.append(text + ".")
    return out


def document(
    results: Sequence[PolicyResult],
    *,
    config: SimulationConfig,
    step_times: np.ndarray,
    inputs: Mapping[str, Any],
    series: bool = False,
) -> dict[str, Any]:
    """The JSON document of a run (see the module docstring)."""
    summaries = [r.summary() for r in results]
    rows = comparison(summaries)
    end = float(step_times[-1] + config.step_s) if len(step_times) else 0.0
    doc: dict[str, Any] = {
        "period": {
            "start": _iso(float(step_times[0])) if len(step_times) else None,
            "end": _iso(end) if len(step_times) else None,
            "steps": len(step_times),
            "stepSeconds": config.step_s,
        },
        "settings": {k: v for k, v in asdict(config).items() if k not in ("workers", "policies")},
        "inputs": dict(inputs),
        "policies": summaries,
        "comparison": rows,
        "conclusions": sentences(rows),
        "findings": {r.name: r.findings for r in results if r.findings},
    }
    if series:
        doc["series"] = {
            "time": [_iso(float(t)) for t in step_times],
            "columns": dict(SERIES_COLUMNS),
            "policies": {
                r.name: {k: [_num(x) for x in v] for k, v in per_step(r, config.step_s).items()}
                for r in results
            },
        }
    return doc


def _num(x: float) -> float | None:
    v = float(x)
    return None if not math.isfinite(v) else round(v, 4)


# ------------------------------------------------------------------------------ files
def write_csv_summary(path: Path, summaries: Sequence[Mapping[str, Any]]) -> None:
    keys = [k for k in summaries[0] if k != "description"] if summaries else []
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(keys)
        for s in summaries:
            w.writerow(["" if s[k] is None else s[k] for k in keys])


def write_csv_series(
    path: Path, results: Sequence[PolicyResult], step_times: np.ndarray, step_s: float
) -> None:
    cols = [c for c, _ in SERIES_COLUMNS]
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time", "policy", *cols])
        data = {r.name: per_step(r, step_s) for r in results}
        for i, t in enumerate(step_times):
            stamp = _iso(float(t))
            for r in results:
                row = data[r.name]
                w.writerow(
                    [stamp, r.name, *("" if (v := _num(row[c][i])) is None else v for c in cols)]
                )


def daily(values: np.ndarray, step_times: np.ndarray) -> tuple[list[datetime], np.ndarray]:
    """Per UTC day: the sum of a per-step series."""
    days = (np.asarray(step_times) // 86400).astype(np.int64)
    uniq = np.unique(days)
    out = np.array([values[days == d].sum() for d in uniq])
    return [datetime.fromtimestamp(int(d) * 86400, UTC) for d in uniq], out


def _daily_ratio(
    num: np.ndarray, den: np.ndarray, step_times: np.ndarray
) -> tuple[list[datetime], np.ndarray]:
    dates, n = daily(num, step_times)
    _, d = daily(den, step_times)
    with np.errstate(divide="ignore", invalid="ignore"):
        return dates, np.where(d > 0, n / d, np.nan)


def plots(
    results: Sequence[PolicyResult], step_times: np.ndarray, out_dir: Path
) -> dict[str, list[Path]]:
    """carbon, latency and tradeoff plots, each as PNG and SVG, in `out_dir`."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "aifactory-simulation", "font.size": 9})
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    colors = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(POLICIES)}

    def save(fig: Any, name: str) -> None:
        paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
        fig.savefig(paths[0], dpi=110, metadata=_PNG_META, bbox_inches="tight")
        fig.savefig(paths[1], metadata=_SVG_META, bbox_inches="tight")
        plt.close(fig)
        files[name] = paths

    # over time: per day, or per step for periods of a week or less
    by_day = len(step_times) > 1 and (float(step_times[-1]) - float(step_times[0])) > 7 * 86400
    unit = "day" if by_day else "step"

    def over_time(num: np.ndarray, den: np.ndarray | None) -> tuple[list[datetime], np.ndarray]:
        if by_day:
            if den is None:
                return daily(num, step_times)
            return _daily_ratio(num, den, step_times)
        dates = [datetime.fromtimestamp(float(t), UTC) for t in step_times]
        if den is None:
            return dates, num
        with np.errstate(divide="ignore", invalid="ignore"):
            return dates, np.where(den > 0, num / den, np.nan)

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for r in results:
        dates, kg = over_time(r.series["gco2e"] / 1000.0, None)
        ax.plot(np.array(dates), kg, label=r.name, color=colors.get(r.name), linewidth=1.0)
    ax.set_ylabel(f"kgCO2e per {unit}")
    ax.set_title(f"Emissions per {unit} (GPU power x PUE x hourly grid carbon intensity)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", ncol=len(results), fontsize=8)
    fig.autofmt_xdate()
    save(fig, "carbon")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for r in results:
        dates, ms = over_time(r.series["rttWeighted"], r.series["served"])
        ax.plot(np.array(dates), ms, label=r.name, color=colors.get(r.name), linewidth=1.0)
    ax.set_ylabel("mean RTT (ms)")
    ax.set_title(f"Mean round-trip time of the requests served, per {unit}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", ncol=len(results), fontsize=8)
    fig.autofmt_xdate()
    save(fig, "latency")

    fig = tradeoff_figure([r.summary() for r in results], colors)
    save(fig, "tradeoff")
    return files


def tradeoff_figure(summaries: Sequence[Mapping[str, Any]], colors: Mapping[str, Any]) -> Any:
    """Total tCO2e against mean RTT, one point per policy (a label goes below its point when
    another point sits just above it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    points = [
        (s["policy"], s["meanRttMs"], s["kgCO2e"] / 1000.0)
        for s in summaries
        if s["meanRttMs"] is not None
    ]
    xs = [x for _, x, _ in points] or [0.0]
    ys = [y for _, _, y in points] or [0.0]
    dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    for name, x, y in points:
        # a close neighbour just above: put this label below the point
        crowded = any(0 < y2 - y <= 0.06 * dy and abs(x2 - x) <= 0.1 * dx for _, x2, y2 in points)
        ax.scatter([x], [y], s=60, color=colors.get(name))
        ax.annotate(
            name, (x, y), textcoords="offset points", xytext=(7, -11 if crowded else 5), fontsize=8
        )
    ax.set_xlabel("mean RTT of requests served (ms)")
    ax.set_ylabel("tCO2e over the period")
    ax.set_title("Carbon / latency trade-off")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.1)
    return fig


def write_outputs(
    out_dir: Path,
    doc: Mapping[str, Any],
    results: Sequence[PolicyResult],
    step_times: np.ndarray,
    step_s: float,
) -> dict[str, list[Path]]:
    """Every file of the module docstring in `out_dir` (created); returns the plot files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    short = {k: v for k, v in doc.items() if k != "series"}
    (out_dir / "summary.json").write_text(json.dumps(short, indent=2) + "\n")
    (out_dir / "simulation.json").write_text(json.dumps(doc) + "\n")
    write_csv_summary(out_dir / "summary.csv", doc["policies"])
    write_csv_series(out_dir / "series.csv", results, step_times, step_s)
    return plots(results, step_times, out_dir)


# ------------------------------------------------------------------------------ HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead{background:#f3f3f3}
img{max-width:100%}
.note{color:#555;font-size:0.9em}
.bad{color:#b00020;font-weight:bold}
code{background:#f5f5f5;padding:0 0.2em}
"""

SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("policy", "policy"),
    ("kgCO2e", "kgCO2e"),
    ("kWh", "kWh"),
    ("meanRttMs", "mean RTT ms"),
    ("p95RttMs", "p95 RTT ms"),
    ("withinSloShare", "within SLO"),
    ("replicasMoved", "moved"),
    ("replicasRescheduled", "rescheduled"),
    ("unplacedReplicaHours", "unplaced replica-h"),
    ("sovereigntyViolations", "sovereignty violations"),
    ("sloViolations", "SLO violations"),
    ("capacityViolations", "capacity violations"),
    ("gpuUtilisation", "GPU utilisation"),
)


def fmt(key: str, value: Any) -> str:
    """One summary value as the tables show it."""
    if value is None:
        return "-"
    if key in ("withinSloShare", "gpuUtilisation", "gpuAllocation", "servedShare"):
        return f"{100 * float(value):.2f}%"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary_table_md(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The summary as a Markdown table (docs/simulation.md)."""
    head = "| " + " | ".join(label for _, label in SUMMARY_COLUMNS) + " |"
    rule = "| " + " | ".join("---" for _ in SUMMARY_COLUMNS) + " |"
    rows = [
        "| " + " | ".join(fmt(k, s.get(k)) for k, _ in SUMMARY_COLUMNS) + " |" for s in summaries
    ]
    return "\n".join([head, rule, *rows])


def _table(rows: Sequence[Sequence[str]], head: Sequence[str]) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_html(path: Path, doc: Mapping[str, Any], images: Mapping[str, Sequence[Path]]) -> None:
    """The self-contained report page."""
    p = doc["period"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>AI factory fleet simulation</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>AI factory fleet simulation</h1>",
        f"<p>{html.escape(str(p['start']))} to {html.escape(str(p['end']))}: {p['steps']:,} "
        f"steps of {p['stepSeconds']:g} s, every policy through the operator's own placement "
        "engine and rebalancing rules.</p>",
        "<h2>What the engine did against each baseline</h2><ul>",
    ]
    parts += [f"<li>{html.escape(s)}</li>" for s in doc.get("conclusions", [])]
    parts.append("</ul>")
    summaries = doc["policies"]
    parts.append("<h2>Summary</h2>")
    parts.append(
        _table(
            [[fmt(k, s.get(k)) for k, _ in SUMMARY_COLUMNS] for s in summaries],
            [label for _, label in SUMMARY_COLUMNS],
        )
    )
    bad = [
        s
        for s in summaries
        if s["sovereigntyViolations"] or s["sloViolations"] or s["capacityViolations"]
    ]
    if bad:
        parts.append(
            "<p class='bad'>Hard rules broke in: "
            + html.escape(", ".join(s["policy"] for s in bad))
            + " (see Findings).</p>"
        )
    else:
        parts.append(
            "<p>Hard rules (sovereignty, SLO, capacity) held at every step of every policy.</p>"
        )
    for name, title in (
        ("carbon", "Carbon over time"),
        ("latency", "Latency over time"),
        ("tradeoff", "Carbon / latency trade-off"),
    ):
        files = images.get(name)
        if files:
            png = next(f for f in files if f.suffix == ".png")
            parts.append(f"<h2>{title}</h2>{_img(png)}")
    inputs = doc.get("inputs", {})
    mods = inputs.get("modules", [])
    if mods:
        parts.append("<h2>Fleet</h2>")
        parts.append(
            _table(
                [
                    [
                        m["name"],
                        m["country"],
                        m.get("zone") or "declared value",
                        fmt("x", m.get("meanCarbonIntensity")),
                        str(m.get("gpus", "")),
                    ]
                    for m in mods
                ],
                ["module", "country", "grid zone", "mean gCO2e/kWh", "GPUs"],
            )
        )
    deps = inputs.get("deployments", [])
    if deps:
        parts.append("<h2>Demand</h2>")
        parts.append(f"<p class='note'>{html.escape(str(inputs.get('demand', '')))}</p>")
        rows = []
        for d in deps:
            for r in d.get("regions", []):
                rows.append(
                    [
                        d["deployment"],
                        r["name"],
                        fmt("x", r.get("population")),
                        r.get("timezone", ""),
                        r.get("source", ""),
                    ]
                )
        if rows:
            head = ["deployment", "region", "population", "time zone", "population from"]
            parts.append(_table(rows, head))
    events = inputs.get("events", [])
    if events:
        parts.append("<h2>Injected events</h2><ul>")
        parts += [f"<li><code>{html.escape(e)}</code></li>" for e in events]
        parts.append("</ul>")
    findings = doc.get("findings", {})
    if findings:
        parts.append("<h2>Findings</h2><ul>")
        for lines in findings.values():
            parts += [f"<li>{html.escape(x)}</li>" for x in lines]
        parts.append("</ul>")
    warnings = inputs.get("warnings", [])
    if warnings:
        parts.append("<h2>Warnings</h2><ul>")
        parts += [f"<li>{html.escape(w)}</li>" for w in warnings]
        parts.append("</ul>")
    parts.append("<h2>Method and data</h2><ul class='note'>")
    parts += [f"<li>{html.escape(x)}</li>" for x in METHOD_NOTES]
    parts.append("</ul></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")


METHOD_NOTES: tuple[str, ...] = (
    "Every policy runs under the operator's rules: keep or repair between rebalances "
    "(hysteresis 100%), a fleet-wide re-solve per rebalance with the configured hysteresis, "
    "at most disruptionBudget replicas moved per deployment and interval, make-before-break, "
    "tolerationSeconds for NotReady modules; the policies differ only in what they minimise.",
    "Emissions: GPUs held x board power x PUE x the hourly lifecycle carbon intensity of the "
    "module's grid zone; replicas that are being replaced count until their replacement is "
    "Ready. Latency: requests routed per region in proportion to replicas; RTT measured where "
    "a table covers the pair, else the RTT model.",
    "Carbon intensity: Electricity Maps hourly lifecycle data for 2022 (ODbL 1.0), via the "
    "EuroSys 2024 artifact of Sukprasert et al.",
    "Demand: populations and time zones from GeoNames (CC BY 4.0); minute-scale burstiness "
    "from the Azure LLM inference trace 2023 (CC BY 4.0); the diurnal curve is an assumption.",
)


def report_files(doc: Mapping[str, Any]) -> str:
    """A short text summary for the terminal."""
    buf = io.StringIO()
    rows = [[label for _, label in SUMMARY_COLUMNS[:9]]]
    rows += [[fmt(k, s.get(k)) for k, _ in SUMMARY_COLUMNS[:9]] for s in doc["policies"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        buf.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    for s in doc.get("conclusions", []):
        buf.write("\n" + s)
    buf.write("\n")
    return buf.getvalue()


__all__ = [
    "METHOD_NOTES",
    "SERIES_COLUMNS",
    "SUMMARY_COLUMNS",
    "comparison",
    "daily",
    "document",
    "fmt",
    "per_step",
    "plots",
    "report_files",
    "sentences",
    "summary_table_md",
    "write_csv_series",
    "write_csv_summary",
    "write_html",
    "write_outputs",
]
