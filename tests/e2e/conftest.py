"""The operator, run for real (`python -m aifactory`) against the session's local fleet.

Short intervals keep the tests quick; every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hack.demo import SAMPLE_FILES, apply_samples, install
from hack.fleet import HUB, Fleet
from tests.e2e.helpers import (
    OperatorProcess,
    all_modules_ready,
    delete_all_deployments,
    operator_env,
    wait_for,
)

from aifactory.controllers.startup import WEBHOOK_CONFIGURATION

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def operator(fleet: Fleet, kubectl: Any) -> Iterator[OperatorProcess]:
    """CRDs, sample namespaces/policies/modules, and the operator with short intervals."""
    install(fleet)
    fleet.register_members()
    apply_samples(fleet, SAMPLE_FILES[:3])  # namespaces, policies, modules; tests add deployments
    env = operator_env(
        fleet.kubeconfig(HUB),
        AIFACTORY_REBALANCE_INTERVAL="4",
        AIFACTORY_DISRUPTION_BUDGET="2",
        AIFACTORY_DEMAND_POLL_INTERVAL="2",
        # soft-signal tolerances scaled down like every other interval of the suite
        AIFACTORY_SIGNAL_TOLERANCE_SECONDS="4",
        AIFACTORY_DEMAND_STABILIZATION_WINDOW="4",
        AIFACTORY_PENDING_TIMEOUT="30",
        # accountability: measured SLOs and compliance reports read as often as demand
        AIFACTORY_SLO_POLL_INTERVAL="2",
        AIFACTORY_REPORTS_INTERVAL="2",
    )
    op = OperatorProcess(env, fleet.log_dir / "operator-e2e.log")
    op.start()
    try:
        op.wait_serving()
        wait_for("every sample module Ready", lambda: all_modules_ready(kubectl), timeout=90)
        yield op
    finally:
        delete_all_deployments(kubectl)
        op.stop()
        # the operator leaves its webhook configuration (failurePolicy Fail) when it stops: a
        # reused fleet must not keep refusing InferenceDeployments in the next session
        kubectl(
            "delete",
            "validatingwebhookconfiguration",
            WEBHOOK_CONFIGURATION,
            "--ignore-not-found",
            check=False,
        )
