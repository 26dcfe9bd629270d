"""`audit report`: replica-hours per data classification and country, from records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aifactory.audit.summary import where_ran

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def rec(
    seq: int,
    hours: float,
    after: dict[str, int],
    *,
    reason: str = "Scaled",
    cls: str = "restricted",
    name: str = "app",
) -> dict[str, Any]:
    countries = {"paris": "FR", "oslo": "NO", "dallas": "US"}
    return {
        "spec": {
            "sequence": seq,
            "time": (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "reason": reason,
            "deployment": {"namespace": "ns", "name": name, "dataClassification": cls},
            "after": [{"module": m, "region": "", "replicas": k} for m, k in after.items()],
            "modules": [{"name": m, "country": countries[m]} for m in after],
        }
    }


def test_replica_hours_by_classification_and_country() -> None:
    records = [
        rec(1, 0, {"paris": 2}, reason="Placed"),
        rec(2, 10, {"paris": 1, "oslo": 1}),
        rec(3, 1, {"dallas": 3}, reason="Placed", cls="confidential", name="other"),
        rec(4, 11, {}, reason="Deleted", cls="confidential", name="other"),
    ]
    rows, notes = where_ran(records, T0, T0 + timedelta(hours=20))
    got = {(r.classification, r.country): r.replica_hours for r in rows}
    assert got == pytest.approx(
        {
            ("restricted", "FR"): 2 * 10 + 1 * 10,
            ("restricted", "NO"): 10,
            ("confidential", "US"): 30,
        }
    )
    assert not notes


def test_the_period_cuts_and_late_records_are_noted() -> None:
    records = [rec(5, 5, {"paris": 4})]  # first retained record is not the initial placement
    rows, notes = where_ran(records, T0 + timedelta(hours=4), T0 + timedelta(hours=6))
    assert rows[0].replica_hours == pytest.approx(4.0)
    assert notes and "ns/app" in notes[0]
