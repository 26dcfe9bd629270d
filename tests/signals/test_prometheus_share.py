"""Live tier shares from a real Prometheus, and the last-good-reading rules the operator keeps.

Needs the `prometheus` binary (Debian: `apt-get install -y prometheus`), as the live-demand
tests do.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.prometheus_server import (
    INSTALL_HINT,
    JOB,
    Exporter,
    Prometheus,
    log_tail,
    start_prometheus,
)

from aifactory.api.router import PrometheusShareSource
from aifactory.controllers.routers import _next_state
from aifactory.routers.status import SignalState
from aifactory.signals.demand import (
    REASON_BAD_RESULT,
    REASON_EMPTY_SAMPLE,
    REASON_OUT_OF_RANGE,
    REASON_UNREACHABLE,
    DemandSignalError,
)
from aifactory.signals.share import fetch_share

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"the prometheus binary is not on PATH; {INSTALL_HINT}", pytrace=False)
    tmp = tmp_path_factory.mktemp("prometheus-share")
    with Exporter() as exporter:
        exporter.set_gauge('tier="chat-large",pod="a"', 0.15)
        exporter.set_gauge('tier="chat-large",pod="b"', 0.1)
        exporter.set_gauge('tier="too-much"', 1.5)
        proc, url = start_prometheus(binary, tmp, exporter)
        prom = Prometheus(url, exporter)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"prometheus exited:\n{log_tail(tmp)}"
                try:
                    result = prom.api(f'up{{job="{JOB}"}}')["data"]["result"]
                    if result and result[0]["value"][1] == "1":
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "prometheus did not scrape the exporter"
                time.sleep(0.2)
            yield prom
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def source(prom: Prometheus, query: str) -> PrometheusShareSource:
    return PrometheusShareSource(url=prom.url, query=query)


def test_one_series_and_scalars_are_shares(prometheus: Prometheus) -> None:
    assert fetch_share(source(prometheus, 'sum(demand_rps{tier="chat-large"})')) == pytest.approx(
        0.25
    )
    assert fetch_share(
        source(prometheus, 'scalar(sum(demand_rps{tier="chat-large"}))')
    ) == pytest.approx(0.25)
    assert fetch_share(source(prometheus, "vector(0.4)")) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("query", "reason", "text"),
    [
        ('demand_rps{tier="chat-large"}', REASON_BAD_RESULT, "must return one series, got 2"),
        ('demand_rps{tier="nobody"}', REASON_EMPTY_SAMPLE, "no series"),
        ('demand_rps{tier="too-much"}', REASON_OUT_OF_RANGE, "within 0..1"),
        ('{__name__=~"demand_rps"}[1m]', REASON_BAD_RESULT, "got matrix"),
    ],
)
def test_bad_answers_are_signal_errors(
    prometheus: Prometheus, query: str, reason: str, text: str
) -> None:
    with pytest.raises(DemandSignalError) as err:
        fetch_share(source(prometheus, query))
    assert err.value.reason == reason
    assert text in err.value.message


def test_unreachable() -> None:
    with pytest.raises(DemandSignalError) as err:
        fetch_share(PrometheusShareSource(url="http://127.0.0.1:9", query="vector(1)"))
    assert err.value.reason == REASON_UNREACHABLE


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_last_good_reading_rules() -> None:
    down = DemandSignalError(REASON_UNREACHABLE, "cannot reach Prometheus")
    # before any reading: the spec's shares (nothing in effect), the error says so
    first = _next_state(None, None, down, NOW, window=None, written=None, written_at=None)
    assert first.effective is None and first.error_reason == REASON_UNREACHABLE
    # a good reading takes effect
    good = _next_state(
        first, {"chat-large": 0.3}, None, NOW, window=None, written=None, written_at=None
    )
    assert good.effective == {"chat-large": 0.3} and good.error_reason is None
    # an error keeps it, and when it was read
    later = NOW + timedelta(minutes=5)
    kept = _next_state(good, None, down, later, window=None, written=None, written_at=None)
    assert kept.effective == {"chat-large": 0.3} and kept.read_at == NOW
    # a restarted operator keeps the reading its status recorded
    restarted = _next_state(
        SignalState(), None, down, later, window=None, written={"chat-large": 0.4}, written_at=NOW
    )
    assert restarted.effective == {"chat-large": 0.4} and restarted.read_at == NOW


def test_router_demand_is_stabilised_like_live_demand() -> None:
    high = _next_state(
        None, {"eu-west": 200.0}, None, NOW, window=60, written=None, written_at=None
    )
    low = _next_state(
        high,
        {"eu-west": 100.0},
        None,
        NOW + timedelta(seconds=30),
        window=60,
        written=None,
        written_at=None,
    )
    assert low.effective == {"eu-west": 200.0}  # down only after the window
    later = _next_state(
        low,
        {"eu-west": 100.0},
        None,
        NOW + timedelta(seconds=120),
        window=60,
        written=None,
        written_at=None,
    )
    assert later.effective == {"eu-west": 100.0}
