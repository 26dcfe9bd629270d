"""Parsing measured RTT tables: pairs and matrix CSVs, ConfigMap data, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.signals.rtt import (
    REASON_MALFORMED,
    RttTableError,
    parse_rtt_csv,
    rtt_table_from_config_map,
    rtt_table_from_rows,
    unmatched_names,
)

AZURE = (
    Path(__file__).resolve().parents[2]
    / "bench/data/latency/azure_interregion_rtt_p95_ms_2026-07.csv"
)


def test_pairs_shape_any_column_order_and_extra_columns() -> None:
    text = (
        "# probes of 2025-06-01\n"
        "module,probe,rttMs,region\n"
        "paris,bb-1,11.8,eu-west\n"
        "\n"
        "oslo,bb-2,4,eu-north\n"
    )
    t = parse_rtt_csv(text, source="rtt.csv")
    assert dict(t.pairs) == {("eu-west", "paris"): 11.8, ("eu-north", "oslo"): 4.0}
    assert t.source == "rtt.csv"


def test_matrix_shape_rows_are_regions_and_empty_cells_are_not_measured() -> None:
    text = "region,paris,oslo,dallas\neu-west, 11.8 ,,\nus-east,,,31.5\n"
    t = parse_rtt_csv(text)
    assert dict(t.pairs) == {("eu-west", "paris"): 11.8, ("us-east", "dallas"): 31.5}


def test_a_real_matrix_parses_whole() -> None:
    t = parse_rtt_csv(AZURE.read_text(), source=AZURE.name)
    header = AZURE.read_text().splitlines()[0].split(",")
    assert header[0] == "Source"
    n = len(header) - 1
    assert len(t) == n * (n - 1)  # every pair but the diagonal
    assert t.get("Australia Central", "Australia Central 2") == 5.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the table is empty"),
        ("# only a comment\n", "the table is empty"),
        ("region,module,rttMs\n", "no measured pair"),
        ("region,module,rttMs\neu,paris,fast\n", "line 2: 'fast' is not a number"),
        ("region,module,rttMs\neu,paris,-3\n", "line 2: RTT must be a finite number >= 0"),
        ("region,module,rttMs\neu,paris,nan\n", "line 2: RTT must be a finite number >= 0"),
        (
            "region,module,rttMs\neu,paris,3\neu,paris,4\n",
            "line 3: eu -> paris already given on line 2",
        ),
        ("region,module,rttMs\neu,paris\n", "line 2: expected 3 columns, got 2"),
        ("region,module,rttMs\n,paris,3\n", "line 2: region and module must not be empty"),
        ("just-one-column\n", "header must be either region,module,rttMs or a matrix"),
        ("region,paris,paris\neu,1,2\n", "module paris appears twice"),
        ("region,paris,oslo\neu,1\n", "line 2: expected 3 cells, got 2"),
        ("region,paris\neu,1\neu,2\n", "line 3: region eu already given on line 2"),
        ("region,paris\neu,x\n", "line 2, column paris: 'x' is not a number"),
    ],
)
def test_errors_name_the_line_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(RttTableError) as info:
        parse_rtt_csv(text, source="rtt.csv")
    assert info.value.reason == REASON_MALFORMED
    assert expected in str(info.value)
    assert str(info.value).startswith("rtt.csv: ")


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = "region,module,rttMs\na,m,x\nb,m,-1\nc,m,2\n"
    with pytest.raises(RttTableError) as info:
        parse_rtt_csv(text)
    assert len(info.value.problems) == 2


def test_config_map_merges_csv_keys_and_skips_others() -> None:
    data = {
        "europe.csv": "region,module,rttMs\neu-west,paris,11.8\n",
        "americas.csv": "region,dallas\nus-east,31.5\n",
        "README": "not a table",
    }
    t = rtt_table_from_config_map(data, source="configmap aifactory-system/rtt")
    assert dict(t.pairs) == {("eu-west", "paris"): 11.8, ("us-east", "dallas"): 31.5}
    assert t.source == "configmap aifactory-system/rtt"


def test_config_map_errors_name_the_key() -> None:
    with pytest.raises(RttTableError, match=r"no data key ending in \.csv"):
        rtt_table_from_config_map({"rtt.txt": "x"})
    with pytest.raises(RttTableError, match=r"no data key"):
        rtt_table_from_config_map(None)
    data = {
        "a.csv": "region,module,rttMs\neu,paris,1\n",
        "b.csv": "region,module,rttMs\neu,paris,2\n",
        "c.csv": "region,module,rttMs\neu,oslo,x\n",
    }
    with pytest.raises(RttTableError) as info:
        rtt_table_from_config_map(data)
    assert "b.csv: eu -> paris already given in a.csv" in info.value.problems
    assert any(p.startswith("c.csv: line 2") for p in info.value.problems)


def test_rows_from_another_source_get_the_same_checks() -> None:
    t = rtt_table_from_rows([("eu", "paris", 0.0125 * 1000)], source="prometheus")
    assert t.get("eu", "paris") == 12.5
    with pytest.raises(RttTableError) as info:
        rtt_table_from_rows(
            [("eu", "paris", float("nan")), ("", "oslo", 1.0), ("eu", "oslo", 1), ("eu", "oslo", 2)]
        )
    assert len(info.value.problems) == 3


def test_unmatched_names_are_reported_sorted() -> None:
    t = parse_rtt_csv("region,module,rttMs\neu,paris,1\nmars,paris,9\neu,atlantis,3\n")
    assert unmatched_names(t, ["eu"], ["paris"]) == (["mars"], ["atlantis"])
