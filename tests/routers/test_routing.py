"""Routing from Ready replicas: weights follow make-before-break, policies always win."""

from __future__ import annotations

from typing import Any

import pytest

from aifactory.api import ModulePlacement
from aifactory.routers.routing import ready_routing


def placed(module: str, **regions: int) -> ModulePlacement:
    return ModulePlacement(module=module, replicas=sum(regions.values()), regions=regions)


CASES: list[tuple[str, dict[str, Any], dict[str, dict[str, float]]]] = [
    (
        "every replica Ready: weights are the placement's",
        {
            "placements": [placed("paris", **{"eu-west": 3}), placed("oslo", **{"eu-west": 1})],
            "ready": {"paris": 3, "oslo": 1},
        },
        {"eu-west": {"oslo": 0.25, "paris": 0.75}},
    ),
    (
        "a new module is not routed to before its replicas are Ready",
        {
            "placements": [placed("oslo", **{"eu-west": 2})],
            "ready": {"oslo": 0, "paris": 2},
            "previous": {"eu-west": {"paris": 1.0}},
        },
        {"eu-west": {"paris": 1.0}},
    ),
    (
        "both serve during the handover, by Ready replicas",
        {
            "placements": [placed("oslo", **{"eu-west": 2})],
            "ready": {"oslo": 1, "paris": 2},
            "previous": {"eu-west": {"paris": 1.0}},
        },
        {"eu-west": {"oslo": round(1 / 3, 4), "paris": round(2 / 3, 4)}},
    ),
    (
        "a module serving two regions splits its Ready replicas in proportion",
        {
            "placements": [placed("paris", **{"eu-west": 1, "eu-central": 3})],
            "ready": {"paris": 2},
        },
        {"eu-west": {"paris": 1.0}, "eu-central": {"paris": 1.0}},
    ),
    (
        "nothing Ready yet: no route",
        {"placements": [placed("paris", **{"eu-west": 2})], "ready": {}},
        {},
    ),
    (
        "a forbidden module is never routed to, Ready or not",
        {
            "placements": [placed("dallas", **{"eu-west": 1}), placed("paris", **{"eu-west": 1})],
            "ready": {"dallas": 1, "paris": 1},
            "forbidden": {("eu-west", "dallas")},
        },
        {"eu-west": {"paris": 1.0}},
    ),
    (
        "a held module without a known region is not guessed",
        {"placements": [placed("oslo", **{"eu-west": 1})], "ready": {"oslo": 1, "warsaw": 4}},
        {"eu-west": {"oslo": 1.0}},
    ),
]


@pytest.mark.parametrize(("why", "kw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_ready_routing(why: str, kw: dict[str, Any], expected: dict[str, dict[str, float]]) -> None:
    got = ready_routing(
        ["eu-west", "eu-central"],
        kw["placements"],
        kw["ready"],
        kw.get("previous"),
        kw.get("forbidden", ()),
    )
    assert got == expected, why
    for weights in got.values():
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
