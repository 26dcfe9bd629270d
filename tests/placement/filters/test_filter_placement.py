"""PlacementAffinity: the deployment's allow-list and module selector."""

from __future__ import annotations

from typing import Any

import pytest
from tests.placement.factories import module, state, workload

from aifactory.placement import Code, Requirement, Selector
from aifactory.placement.filters import placement


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({}, None),
        ({"placement_modules": frozenset({"a"})}, None),
        ({"placement_modules": frozenset({"b"})}, placement.REASON_NOT_LISTED),
        ({"module_selector": Selector.of({"tier": "green"})}, None),
        ({"module_selector": Selector.of({"tier": "gold"})}, placement.REASON_SELECTOR),
        (
            {
                "module_selector": Selector.of(
                    match_expressions=[Requirement("tier", "NotIn", ("green",))]
                )
            },
            placement.REASON_SELECTOR,
        ),
        (
            {
                "module_selector": Selector.of(
                    match_expressions=[Requirement("gpu", "DoesNotExist")]
                )
            },
            None,
        ),
        ({"module_selector": Selector()}, None),
    ],
)
def test_placement(rules: dict[str, Any], reason: str | None) -> None:
    fleet, ws = state([module("a", labels={"tier": "green"})], workload(**rules))
    status = placement.filter(fleet, ws).status(0)
    if reason is None:
        assert status.ok
    else:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (reason,)
