"""Write one benchmark's section of docs/benchmarks.md, leaving the other benchmarks' alone."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, text: str, heading: str) -> None:
    """Replace the section of `path` that starts at the line `heading` (up to the next heading
    of the same or a higher level outside code fences, or the end) with `text`; append `text`
    when there is none.

    `heading` is a Markdown heading line such as "## Chaos soak (issue #10)"; `text` should
    start with it so the next run finds the section again. A file that does not exist yet is
    created.
    """
    level = len(heading) - len(heading.lstrip("#"))
    doc = path.read_text() if path.exists() else ""
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == heading), None)
    body = text.rstrip("\n") + "\n"
    if start is None:
        new = (doc.rstrip("\n") + "\n\n" if doc.strip() else "") + body
    else:
        end, fenced = len(lines), False
        for i in range(start + 1, len(lines)):
            if lines[i].startswith("```"):
                fenced = not fenced
            stripped = lines[i].lstrip("#")
            hashes = len(lines[i]) - len(stripped)
            if not fenced and 0 < hashes <= level and stripped.startswith(" "):
                end = i
                break
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + body + ("\n" + tail if tail else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
