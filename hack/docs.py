"""Run the shell blocks of README.md and docs/getting-started.md as a new user would.

    python -m hack.docs check [--keep]   run every block on a fresh fleet; compare the outputs
    python -m hack.docs write [--keep]   the same, then rewrite the pages' output blocks
                                         (`make readme`)

Every ```bash block of a page runs in order, from the repository root, in `bash -eo pipefail`
after `source hack/env.sh` (pinned binaries and aifactoryctl on PATH, KUBECONFIG of the hub),
with AIFACTORY_FLEET_ROOT pointing at a fresh fleet directory (.fleet-docs/ by default, so a
demo under .fleet/ is left alone). A block fails on a non-zero exit.

A ```text block after a shell block (before the next one) is that block's output. It must
match what the block prints (stdout and stderr, as a terminal shows them):

* table cells are compared, not spacing: lines are split into cells on runs of 2+ spaces;
  volatile columns (AGE, HEARTBEAT, CREATED AT) and timings and pids in `demo:` lines are
  masked on both sides;
* a line `...` stands for any lines: a block may show the head or the tail of the output, or
  pieces; the pieces between `...` must appear in that order, each one contiguous.

`write` replaces each output block with the real output (from the first line the page showed,
when it showed a tail; the first lines, as many as the page showed, when it showed a head).

A shell block that must not run here (a real cluster, the test suite itself) is preceded by
`<!-- docs-test: skip (why) -->`; the run reports every skipped block with its reason.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/getting-started.md")
SHELL = {"bash", "sh", "shell"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
#: Table columns whose values change from run to run.
VOLATILE = ("AGE", "HEARTBEAT", "CREATED AT", "LAST SEEN")
ELLIPSIS = "..."
BLOCK_TIMEOUT = 900


@dataclass
class Output:
    """An output block: its text and where its content lines sit in the page (0-based)."""

    text: str
    start: int
    end: int


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    code: str
    skip: str | None = None
    expected: Output | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass
class Result:
    block: Block
    code: int
    output: str
    problems: list[str] = field(default_factory=list)


def parse(page: str, text: str) -> list[Block]:
    """The shell blocks of a page with their skip markers and output blocks."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    last_prose = ""
    current: Block | None = None
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                last_prose = lines[i]
            i += 1
            continue
        lang = m.group("lang")
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = lines[i + 1 : j]
        if lang in SHELL:
            skip = SKIP.search(last_prose)
            current = Block(
                page, i + 1, "\n".join(body) + "\n", skip.group("why") if skip else None
            )
            blocks.append(current)
        elif lang == "text" and current is not None and current.expected is None:
            current.expected = Output("\n".join(body), i + 1, j)
        last_prose = ""
        i = j + 1
    return blocks


# ------------------------------------------------------------------------------ compare
_SPLIT = re.compile(r"\s{2,}")
_HEADER_CELL = re.compile(r"^[A-Z][A-Z0-9 ()/%.-]*$")


def _mask_line(line: str) -> str:
    if line.startswith("demo:"):
        line = re.sub(r"\b\d+(\.\d+)?s\b", "<t>", line)
        line = re.sub(r"\bpid \d+", "pid <n>", line)
    return line


def normalize(text: str) -> list[str]:
    """Lines as comparable keys: cells joined by a tab, volatile columns masked."""
    out: list[str] = []
    header: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            header = None
            out.append("")
            continue
        if line.strip() == ELLIPSIS:
            out.append(ELLIPSIS)
            continue
        indent = len(line) - len(line.lstrip())
        cells = _SPLIT.split(line.strip())
        if len(cells) > 1 and all(_HEADER_CELL.match(c) for c in cells):
            header = cells
        elif header is not None and len(cells) == len(header):
            cells = ["<v>" if h in VOLATILE else c for h, c in zip(header, cells, strict=True)]
        out.append(" " * indent + "\t".join(_mask_line(c) for c in cells))
    return out


def _pieces(expected: list[str]) -> tuple[list[list[str]], bool, bool]:
    """Expected lines split at `...`: the pieces, and whether the head / tail is elided."""
    pieces: list[list[str]] = [[]]
    for line in expected:
        if line == ELLIPSIS:
            pieces.append([])
        else:
            pieces[-1].append(line)
    head_elided = bool(expected) and expected[0] == ELLIPSIS
    tail_elided = bool(expected) and expected[-1] == ELLIPSIS
    return [p for p in pieces if p], head_elided, tail_elided


def _strip_blank_edges(lines: list[str]) -> list[str]:
    while lines and not lines[0]:
        lines = lines[1:]
    while lines and not lines[-1]:
        lines = lines[:-1]
    return lines


def compare(expected_text: str, actual_text: str) -> list[str]:
    """What in the expected output the actual output contradicts (empty: it matches)."""
    expected = _strip_blank_edges(normalize(expected_text))
    actual = _strip_blank_edges(normalize(actual_text))
    pieces, head_elided, tail_elided = _pieces(expected)
    pos = 0
    for n, piece in enumerate(pieces):
        first, last = n == 0, n == len(pieces) - 1
        starts = [pos] if first and not head_elided else range(pos, len(actual) - len(piece) + 1)
        hit = next((s for s in starts if actual[s : s + len(piece)] == piece), None)
        if hit is None:
            near = _closest(piece, actual[pos:])
            return [
                "expected lines not found in this order:\n    "
                + "\n    ".join(x.replace("\t", "  ") for x in piece)
                + (f"\n  closest actual line: {near}" if near else "")
            ]
        pos = hit + len(piece)
        if last and not tail_elided and pos != len(actual):
            return [
                "the page shows the end of the output, but more follows:\n    "
                + "\n    ".join(x.replace("\t", "  ") for x in actual[pos : pos + 5])
            ]
    return []


def _closest(piece: list[str], actual: list[str]) -> str:
    """The actual line most like the first expected line that is missing (for the message)."""
    import difflib

    for line in piece:
        if line not in actual:
            match = difflib.get_close_matches(line, actual, n=1, cutoff=0.5)
            return (
                f"{match[0].replace(chr(9), '  ')!r} for {line.replace(chr(9), '  ')!r}"
                if match
                else ""
            )
    return ""


def rewrite(expected_text: str, actual_text: str) -> str:
    """The output block `write` puts in the page for this actual output."""
    actual = actual_text.rstrip("\n").splitlines()
    while actual and not actual[0].strip():
        actual = actual[1:]
    lines = [x.rstrip() for x in actual]
    exp = expected_text.splitlines()
    head_elided = bool(exp) and exp[0].strip() == ELLIPSIS
    tail_elided = bool(exp) and exp[-1].strip() == ELLIPSIS
    if head_elided:
        anchor = next((x for x in exp if x.strip() and x.strip() != ELLIPSIS), None)
        keys = normalize("\n".join(lines))
        key = normalize(anchor)[0] if anchor else None
        start = keys.index(key) if key in keys else 0
        lines = [ELLIPSIS, *lines[start:]] if start else lines
    if tail_elided:
        shown = sum(1 for x in exp if x.strip() != ELLIPSIS) + (1 if head_elided else 0)
        if len(lines) > shown:
            lines = [*lines[:shown], ELLIPSIS]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ run
def environment(root: Path) -> dict[str, str]:
    """The environment blocks run in: this one, minus cluster settings, plus the fleet root."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KUBECONFIG"} and not k.startswith("AIFACTORY_")
    }
    env["AIFACTORY_FLEET_ROOT"] = str(root)
    env["COLUMNS"] = "100"
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    return env


def run_block(block: Block, env: dict[str, str]) -> Result:
    script = f"set -eo pipefail\nsource hack/env.sh\n{block.code}"
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Result(block, -1, out, [f"timed out after {BLOCK_TIMEOUT}s"])
    # env.sh's note about a fleet that is not up yet is for humans, not part of the output
    output = "\n".join(
        line for line in proc.stdout.splitlines() if not line.startswith("hack/env.sh: ")
    )
    result = Result(block, proc.returncode, output)
    if proc.returncode != 0:
        result.problems.append(f"exit code {proc.returncode}")
    elif block.expected is not None:
        result.problems += compare(block.expected.text, output)
    return result


def run_pages(
    root: Path, pages: tuple[str, ...] = PAGES, *, log: bool = True
) -> tuple[list[Result], list[Block]]:
    """Run every block of every page in order; stop a page at its first failing block."""
    env = environment(root)
    results: list[Result] = []
    skipped: list[Block] = []
    for page in pages:
        for block in parse(page, (REPO / page).read_text()):
            if block.skip:
                skipped.append(block)
                if log:
                    print(f"docs: {block.where}: skipped ({block.skip})", flush=True)
                continue
            if log:
                first = block.code.strip().splitlines()[0]
                print(f"docs: {block.where}: {first}", flush=True)
            result = run_block(block, env)
            results.append(result)
            if result.code != 0:
                break
    return results, skipped


def write_outputs(results: list[Result]) -> list[str]:
    """Rewrite each page's output blocks from the run; returns the pages changed."""
    by_page: dict[str, list[Result]] = {}
    for r in results:
        if r.block.expected is not None and r.code == 0:
            by_page.setdefault(r.block.page, []).append(r)
    changed = []
    for page, rs in by_page.items():
        path = REPO / page
        lines = path.read_text().splitlines()
        for r in sorted(rs, key=lambda r: -r.block.line):
            exp = r.block.expected
            assert exp is not None
            new = rewrite(exp.text, r.output).splitlines()
            lines[exp.start : exp.end] = new
        text = "\n".join(lines) + "\n"
        if text != path.read_text():
            path.write_text(text)
            changed.append(page)
    return changed


def teardown(root: Path) -> None:
    """Stop the demo's operator and fleet under `root`, and remove the directory."""
    env = environment(root)
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "hack.demo", "down"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=180,
    )
    shutil.rmtree(root, ignore_errors=True)


def report(results: list[Result], skipped: list[Block]) -> list[str]:
    """One entry per failing block, with its output's end."""
    failures = []
    for r in results:
        if r.problems:
            tail = "\n".join(r.output.splitlines()[-25:])
            failures.append(
                f"{r.block.where}: " + "; ".join(r.problems) + f"\n--- output (end) ---\n{tail}"
            )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.docs", description=__doc__)
    parser.add_argument("command", choices=("check", "write"))
    parser.add_argument("--root", type=Path, default=REPO / ".fleet-docs")
    parser.add_argument("--keep", action="store_true", help="leave the fleet running")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    teardown(root)  # fresh: nothing left from an earlier run
    try:
        results, skipped = run_pages(root)
    finally:
        if not args.keep:
            teardown(root)
    for block in skipped:
        print(f"skipped: {block.where}: {block.skip}")
    failures = report(results, skipped)
    if args.command == "write":
        failed_runs = [r for r in results if r.code != 0]
        for page in write_outputs(results):
            print(f"docs: rewrote the output blocks of {page}")
        if failed_runs:
            print("\n\n".join(report(failed_runs, [])), file=sys.stderr)
            return 1
        return 0
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        return 1
    print(f"docs: {len(results)} blocks ran as written, {len(skipped)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
