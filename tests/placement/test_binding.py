"""Which policies bind a deployment: selectors over namespace and deployment labels,
classifications, and policies named in spec.sovereigntyPolicies."""

from __future__ import annotations

from typing import Any

import pytest
from tests.placement.factories import policy, workload

from aifactory.placement import Selector, bind, policy_selects

EU_NS = Selector.of({"residency": "eu"})


@pytest.mark.parametrize(
    ("rules", "wl", "binds"),
    [
        ({}, {}, True),  # no selectors: fleet-wide
        ({"namespace_selector": EU_NS}, {"namespace_labels": {"residency": "eu"}}, True),
        ({"namespace_selector": EU_NS}, {"namespace_labels": {"residency": "us"}}, False),
        ({"namespace_selector": Selector()}, {}, True),
        ({"deployment_selector": Selector.of({"team": "a"})}, {"labels": {"team": "a"}}, True),
        ({"deployment_selector": Selector.of({"team": "a"})}, {"labels": {"team": "b"}}, False),
        (
            {"data_classifications": frozenset({"restricted"})},
            {"data_classification": "restricted"},
            True,
        ),
        (
            {"data_classifications": frozenset({"restricted"})},
            {"data_classification": "public"},
            False,
        ),
        ({"data_classifications": frozenset({"restricted"})}, {}, False),
    ],
)
def test_policy_selects(rules: dict[str, Any], wl: dict[str, Any], binds: bool) -> None:
    assert policy_selects(policy(**rules), workload(**wl)) is binds


def test_bind_splits_and_names() -> None:
    policies = [
        policy("z-enforce", namespace_selector=EU_NS),
        policy("a-audit", enforcement="Audit"),
        policy("named", namespace_selector=Selector.of({"never": "x"})),
    ]
    b = bind(
        workload(namespace_labels={"residency": "eu"}, sovereignty_policies=("named", "gone")),
        policies,
    )
    assert [p.name for p in b.enforce] == ["named", "z-enforce"]
    assert [p.name for p in b.audit] == ["a-audit"]
    assert b.missing == ("gone",)
