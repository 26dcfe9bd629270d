"""Measured-latency SLO: readings fold into breaches with the signal tolerance; the condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aifactory.api import ConditionStatus
from aifactory.audit import slo

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
PAIR = ("eu-west", "paris")
KW = {"tolerance_seconds": 4.0, "min_readings": 2, "hold_seconds": 3600.0}


def feed(readings: list[dict[tuple[str, str], float]], every: float = 2.0):  # type: ignore[no-untyped-def]
    states: dict[tuple[str, str], slo.PairState] = {}
    log = []
    for i, r in enumerate(readings):
        now = T0 + timedelta(seconds=every * i)
        states, transitions = slo.fold(states, r, 40.0, now, **KW)
        log.append((now, dict(states), transitions))
    return log


def test_a_short_spike_breaches_nothing() -> None:
    log = feed([{PAIR: 10}, {PAIR: 120}, {PAIR: 10}, {PAIR: 120}, {PAIR: 10}])
    assert all(not t for *_, t in log)
    assert not slo.excluded(log[-1][1], log[-1][0])


def test_a_lasting_breach_is_declared_after_the_tolerance_and_clears_the_same_way() -> None:
    log = feed([{PAIR: 120}] * 4 + [{PAIR: 12}] * 4)
    kinds = [(i, t.kind) for i, (_, _, ts) in enumerate(log) for t in ts]
    assert kinds == [(2, "breach"), (6, "clear")]  # 4 s and 2 readings each way
    now, states, _ = log[3]
    assert slo.excluded(states, now) == {PAIR}
    now, states, _ = log[-1]
    assert slo.excluded(states, now) == frozenset()  # measured fine again: back in placement


def test_a_breach_that_ends_without_measurements_is_held_out_of_placement() -> None:
    log = feed([{PAIR: 120}] * 3 + [{}] * 4)  # breached at 4 s; gone from 6 s, cleared at 10 s
    _, _, transitions = log[-2]
    assert [t.kind for t in transitions] == ["clear"]
    assert "no longer measured" in transitions[0].why
    now = log[-1][0]
    assert slo.excluded(log[-1][1], now) == {PAIR}
    assert slo.excluded(log[-1][1], now + timedelta(seconds=3601)) == frozenset()


def test_the_condition_names_region_module_and_latency() -> None:
    assert slo.condition(None, 40, 1, T0).status is ConditionStatus.UNKNOWN
    log = feed([{PAIR: 120}] * 3)
    now, states, _ = log[-1]
    cond = slo.condition(states, 40, 2, now)
    assert cond.status is ConditionStatus.TRUE and cond.reason == slo.REASON_BREACHED
    assert "eu-west: paris (120 ms" in cond.message and "above 40 ms" in cond.message
    log = feed([{PAIR: 120}] * 3 + [{}] * 3)
    now, states, _ = log[-1]
    cond = slo.condition(states, 40, 2, now)
    assert cond.status is ConditionStatus.FALSE and cond.reason == slo.REASON_WITHIN
    assert "kept out of placement after a breach: eu-west on paris" in cond.message
