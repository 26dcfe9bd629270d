"""docs/cascades.md quotes `aifactoryctl place -f samples/` as it runs: the numbers are real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aifactory.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "cascades.md"


def test_the_pages_output_is_the_clis(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["place", "-f", "samples/"]) == 0
    out = capsys.readouterr().out
    text = PAGE.read_text()
    block = re.search(r"aifactoryctl place -f samples/\n```\n\n```text\n(.*?)```", text, re.S)
    assert block, "the place output block is missing"
    lines = out.splitlines()
    at = 0
    for piece in block.group(1).split("...\n"):  # "..." stands for any lines
        want = [line for line in piece.splitlines() if line]
        if not want:
            continue
        while at < len(lines) and lines[at : at + len(want)] != want:
            at += 1
        assert at < len(lines), "not in the output (in order):\n" + "\n".join(want)
        at += len(want)
    # the table row of the page is the CLI's summary
    assert "**14.4 ms** | **0.253**" in text and "35.0 ms | 0.511" in text
    assert "mean RTT 14.4 ms vs 35.0 ms" in out and "0.253 vs 0.511" in out
