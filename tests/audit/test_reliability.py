"""Module reliability accounting: outages, ready fraction over a window, failovers, breaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aifactory.api.module import ModuleReliabilityStatus
from aifactory.audit.reliability import (
    Breach,
    ReliabilityState,
    from_status,
    status_patch,
    step,
    summarize,
    worth_writing,
)

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
DAY = 86400.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(timeline: list[tuple[float, bool]], window: float = DAY) -> ReliabilityState:
    state = ReliabilityState()
    for t, ready in timeline:
        state = step(state, ready=ready, now=at(t), window_seconds=window)
    return state


def test_a_module_never_ready_has_had_no_outage() -> None:
    state = run([(0, False), (10, False)])
    assert state.since is None and not state.outages
    assert summarize(state, at(10), DAY).ready_fraction == 1.0


def test_two_outages_with_their_durations() -> None:
    # ready from 0, down 100..130 and 200..260, ready until 1000
    state = run([(0, True), (100, False), (130, True), (200, False), (260, True), (1000, True)])
    s = summarize(state, at(1000), DAY)
    assert s.outages == 2
    assert s.outage_seconds == pytest.approx(90)
    assert s.longest_outage_seconds == pytest.approx(60)
    assert s.ready_fraction == pytest.approx(1 - 90 / 1000)
    patch = status_patch(state, at(1000), DAY)
    assert [o["durationSeconds"] for o in patch["recentOutages"]] == [30.0, 60.0]
    assert patch["outageSince"] is None


def test_an_ongoing_outage_counts_up_to_now_and_starts_when_ready_turned_false() -> None:
    state = run([(0, True)])
    state = step(state, ready=False, now=at(100), window_seconds=DAY, not_ready_since=at(90))
    s = summarize(state, at(150), DAY)
    assert s.outages == 1 and s.outage_seconds == pytest.approx(60)
    assert status_patch(state, at(150), DAY)["outageSince"] == "2026-05-01T10:01:30Z"


def test_outages_age_out_of_the_window() -> None:
    window = 1000.0
    state = run([(0, True), (100, False), (200, True), (5000, True)], window=window)
    s = summarize(state, at(5000), window)
    assert s.outages == 0 and s.ready_fraction == 1.0


def test_failovers_breaches_and_heartbeat_latency_accumulate() -> None:
    state = run([(0, True)])
    breach = Breach("ns/app", "eu-west", at(5), None, 120.0, 40.0)
    state = step(
        state,
        ready=True,
        now=at(10),
        window_seconds=DAY,
        failovers=[at(9), at(8)],
        breaches=[breach],
        heartbeat_latency_ms=12.5,
    )
    state = step(
        state,
        ready=True,
        now=at(20),
        window_seconds=DAY,
        breaches=[Breach("ns/app", "eu-west", at(5), at(19))],
    )
    patch = status_patch(state, at(20), DAY)
    assert patch["failoversCaused"] == 2 and patch["lastFailoverTime"] == "2026-05-01T10:00:09Z"
    assert patch["sloBreaches"] == 1
    assert patch["recentSloBreaches"][0]["end"] == "2026-05-01T10:00:19Z"
    assert patch["heartbeatLatencyMs"] == 12.5


def test_a_restarted_operator_continues_from_status() -> None:
    state = run([(0, True), (100, False), (130, True), (200, False)])
    patch = status_patch(state, at(250), DAY)
    again = from_status(ModuleReliabilityStatus.model_validate(patch))
    assert again.since == state.since and again.ongoing is not None
    # the outage ended while no operator ran: closed when next seen Ready
    again = step(again, ready=True, now=at(400), window_seconds=DAY)
    s = summarize(again, at(400), DAY)
    assert s.outages == 2 and s.outage_seconds == pytest.approx(30 + 200)


def test_only_events_are_written_at_once_drifting_figures_wait() -> None:
    state = run([(0, True), (10, True)])
    first = status_patch(state, at(10), DAY)
    later = status_patch(state, at(20), DAY)
    assert not worth_writing(first, later, age_seconds=10, every=60)
    assert worth_writing(first, later, age_seconds=61, every=60) is False  # nothing changed
    down = status_patch(step(state, ready=False, now=at(30), window_seconds=DAY), at(30), DAY)
    assert worth_writing(first, down, age_seconds=1, every=60)
    assert worth_writing(None, first, age_seconds=0, every=60)
