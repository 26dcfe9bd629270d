"""Benchmarks write their own section of docs/benchmarks.md and leave the others alone."""

from __future__ import annotations

from pathlib import Path

from hack.benchdoc import write_section

DOC = """# Benchmarks

## One
old one
### detail of one
```bash
# a shell comment, not a heading
python bench/one.py
```
more of one

## Two
two stays
"""


def test_a_section_is_replaced_up_to_the_next_heading_of_its_level(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    write_section(doc, "## One\nnew one\n", "## One")
    assert doc.read_text() == "# Benchmarks\n\n## One\nnew one\n\n## Two\ntwo stays\n"


def test_a_missing_section_is_appended_and_a_missing_file_created(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "benchmarks.md"
    write_section(doc, "## Three\nthree\n", "## Three")
    assert doc.read_text() == "## Three\nthree\n"
    write_section(doc, "## Four\nfour", "## Four")
    assert doc.read_text() == "## Three\nthree\n\n## Four\nfour\n"
    write_section(doc, "## Three\nthree again\n", "## Three")
    assert doc.read_text() == "## Three\nthree again\n\n## Four\nfour\n"
