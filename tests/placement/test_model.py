"""Engine inputs: replica sizing and splitting, selectors, views."""

from __future__ import annotations

import pytest

from aifactory.placement import (
    ModuleView,
    RegionDemand,
    Requirement,
    Selector,
    WorkloadView,
    replicas_per_region,
    split_replicas,
)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, {"a": 1, "b": 1}, {"a": 5, "b": 5}),
        (3, {"a": 1, "b": 1}, {"a": 2, "b": 1}),  # tie goes to the name sorting first
        (7, {"a": 3, "b": 1}, {"a": 5, "b": 2}),
        (4, {"a": 0, "b": 0}, {"a": 2, "b": 2}),
        (0, {"a": 5}, {"a": 0}),
        (5, {}, {}),
    ],
)
def test_split(total: int, weights: dict[str, float], expected: dict[str, int]) -> None:
    assert split_replicas(total, weights) == expected


@pytest.mark.parametrize(
    ("rps", "throughput", "kw", "expected"),
    [
        # ceil(300 * 1.2 / 40) = 9, ceil(500 * 1.2 / 40) = 15
        ({"w": 300, "c": 500}, 40, {"headroom": 0.2}, {"w": 9, "c": 15}),
        ({"w": 100}, 10, {"headroom": 0.1}, {"w": 11}),  # float noise must not make it 12
        ({"w": 10, "c": 10}, 10, {"min_replicas": 6}, {"w": 3, "c": 3}),
        ({"w": 300, "c": 100}, 10, {"max_replicas": 4}, {"w": 3, "c": 1}),
        ({"w": 0, "c": 0}, 10, {"min_replicas": 2}, {"w": 1, "c": 1}),
    ],
)
def test_replicas_per_region(
    rps: dict[str, float], throughput: float, kw: dict[str, float], expected: dict[str, int]
) -> None:
    got = replicas_per_region(rps, throughput_per_replica=throughput, **kw)  # type: ignore[arg-type]
    assert got == expected


def test_selector_semantics() -> None:
    labels = {"tier": "green", "zone": "a"}
    assert Selector().matches(labels)
    assert Selector.of({"tier": "green"}).matches(labels)
    assert not Selector.of({"tier": "gold"}).matches(labels)
    assert Selector.of(match_expressions=[Requirement("tier", "In", ("green", "x"))]).matches(
        labels
    )
    assert Selector.of(match_expressions=[Requirement("gpu", "NotIn", ("x",))]).matches(labels)
    assert Selector.of(match_expressions=[Requirement("zone", "Exists")]).matches(labels)
    assert not Selector.of(match_expressions=[Requirement("zone", "DoesNotExist")]).matches(labels)
    assert Selector.of({"a": "1", "b": "2"}) == Selector.of({"b": "2", "a": "1"})
    assert hash(Selector.of({"a": "1", "b": "2"})) == hash(Selector.of({"b": "2", "a": "1"}))


def test_module_jurisdictions_include_country_groups() -> None:
    m = ModuleView("m", "IS", 0, 0, (), 1.0, jurisdictions=frozenset({"FIVE_EYES"}))
    assert {"IS", "EEA", "FIVE_EYES"} <= m.jurisdictions
    assert "EU" not in m.jurisdictions


def test_region_replicas_must_sum() -> None:
    with pytest.raises(ValueError, match="sum"):
        WorkloadView("ns/a", 3, regions=(RegionDemand("r", 0, 0, 2),))
