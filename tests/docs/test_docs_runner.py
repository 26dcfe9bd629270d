"""The docs runner (hack/docs.py): which blocks run, what counts as the output shown, and how
an output is compared. Pure: no fleet (tests/docs/test_docs_run.py runs the pages for real)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hack.docs import PAGES, compare, normalize, parse, rewrite

REPO = Path(__file__).resolve().parents[2]

PAGE = """\
Intro.

```bash
make demo
```

Prose in between.

```text
...
NAME   AGE
one    5s
```

<!-- docs-test: skip (needs a real cluster) -->
```bash
helm install x
```

```yaml
kind: Namespace
```

```bash
kubectl get x
```
"""


def test_parse_finds_shell_blocks_their_outputs_and_skip_markers() -> None:
    blocks = parse("page.md", PAGE)
    assert [b.code.strip() for b in blocks] == ["make demo", "helm install x", "kubectl get x"]
    assert [b.skip for b in blocks] == [None, "needs a real cluster", None]
    assert blocks[0].expected is not None and blocks[0].expected.text.endswith("one    5s")
    assert blocks[1].expected is None and blocks[2].expected is None
    assert blocks[0].where == "page.md:3"


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_user_pages_runs_or_says_why_not(page: str) -> None:
    blocks = parse(page, (REPO / page).read_text())
    assert blocks, page
    assert any(b.skip is None for b in blocks)
    for b in blocks:
        assert b.skip is None or len(b.skip) > 10, f"{b.where}: say why it is skipped"
        assert "NS NAME" not in b.code, f"{b.where}: placeholders cannot run as written"


def test_volatile_columns_and_spacing_do_not_count() -> None:
    shown = "NAME   READY   AGE\nfirst  True    12s\n"
    now = "NAME     READY   AGE\nfirst    True    3m2s\n"
    assert compare(shown, now) == []
    assert normalize(shown) == normalize(now)


def test_a_different_cell_or_header_is_a_contradiction() -> None:
    shown = "NAME   MODULES\nfirst  lisbon=4\n"
    assert compare(shown, "NAME   MODULES\nfirst  paris=4\n")
    assert compare(shown, "NAME   PLACED\nfirst  lisbon=4\n")


def test_ellipsis_shows_head_tail_or_pieces_in_order() -> None:
    actual = "a\nb\nc\nd\ne\n"
    assert compare("...\nd\ne\n", actual) == []
    assert compare("a\nb\n...\n", actual) == []
    assert compare("a\n...\nd\n...\n", actual) == []
    assert compare("...\nd\nc\n...\n", actual)  # out of order
    assert compare("a\nb\n", actual)  # the page claims the output ends there
    assert compare("b\n...\n", actual)  # the page claims the output starts there


def test_demo_timings_and_pids_are_masked() -> None:
    assert compare("demo: fleet up in 12.3s (pid 100)\n", "demo: fleet up in 9.1s (pid 7)\n") == []


def test_rewrite_keeps_the_part_of_the_output_the_page_showed() -> None:
    actual = "x\ny\nNAME  AGE\none   1s\ntwo   2s\n"
    assert rewrite("...\nNAME  AGE\nold\n", actual) == "...\nNAME  AGE\none   1s\ntwo   2s"
    assert rewrite("x\n...\n", actual) == "x\n..."
    assert rewrite("anything\n", actual) == actual.rstrip()


def test_demo_comparison_marks_what_differs() -> None:
    from hack.demo import comparison

    lines = comparison(
        {"a/x": {"oslo": 2, "paris": 1}, "b/y": {"dallas": 3}},
        {"a/x": {"oslo": 3}, "b/y": {"dallas": 3}},
    )
    assert lines[0].split("  ")[0] == "DEPLOYMENT"
    assert lines[1].split() == ["a/x", "oslo=2,paris=1", "oslo=3", "DIFFERENT"]
    assert lines[2].split() == ["b/y", "dallas=3", "dallas=3", "same"]
