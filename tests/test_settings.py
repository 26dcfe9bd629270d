"""Operator settings: env over file over defaults, and one clear error naming each bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aifactory.settings import SettingsError, load_settings


def test_defaults_follow_the_brief() -> None:
    s = load_settings({})
    assert (s.hysteresis, s.toleration_seconds, s.earth_radius_km, s.route_factor) == (
        0.10,
        60.0,
        6371.0,
        1.6,
    )


def test_env_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("heartbeat_interval: 4\nrebalance_interval: 30\n")
    s = load_settings({"AIFACTORY_CONFIG": str(cfg), "AIFACTORY_REBALANCE_INTERVAL": "12"})
    assert s.heartbeat_interval == 4 and s.rebalance_interval == 12


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AIFACTORY_HYSTERESIS": "1.5"}, "AIFACTORY_HYSTERESIS"),
        ({"AIFACTORY_HEARTBEAT_INTERVAL": "soon"}, "AIFACTORY_HEARTBEAT_INTERVAL"),
        ({"AIFACTORY_DISRUPTION_BUDGET": "0"}, "AIFACTORY_DISRUPTION_BUDGET"),
        (
            {"AIFACTORY_HEARTBEAT_INTERVAL": "60", "AIFACTORY_HEARTBEAT_TIMEOUT": "10"},
            "heartbeat_timeout must be at least heartbeat_interval",
        ),
    ],
)
def test_invalid_values_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_unknown_file_key_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("heartbeat_intervall: 4\n")
    with pytest.raises(SettingsError, match="heartbeat_intervall"):
        load_settings({"AIFACTORY_CONFIG": str(cfg)})


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read AIFACTORY_CONFIG"):
        load_settings({"AIFACTORY_CONFIG": str(tmp_path / "missing.yaml")})


def test_operator_refuses_to_start_with_bad_settings() -> None:
    env = {**os.environ, "AIFACTORY_HYSTERESIS": "2", "KUBECONFIG": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-m", "aifactory"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "AIFACTORY_HYSTERESIS" in proc.stderr and "Traceback" not in proc.stderr


def test_rtt_profile_sets_the_model_constants_unless_given() -> None:
    s = load_settings({"AIFACTORY_RTT_PROFILE": "calibrated-p95"})
    assert (s.route_factor, s.fibre_km_per_ms, s.rtt_overhead_ms) == (1.6, 204.19, 12.0)
    s = load_settings(
        {"AIFACTORY_RTT_PROFILE": "calibrated-mean", "AIFACTORY_RTT_OVERHEAD_MS": "2"}
    )
    assert s.rtt_overhead_ms == 2.0
    assert load_settings({}).rtt_overhead_ms == 1.0
    with pytest.raises(SettingsError, match="AIFACTORY_RTT_PROFILE"):
        load_settings({"AIFACTORY_RTT_PROFILE": "fastest"})


def test_carbon_signal_settings() -> None:
    s = load_settings({})
    assert (s.carbon_signal_type, s.carbon_emission_factor_type) == ("average", "lifecycle")
    assert s.energy_signal_max_age == 3 * 3600 and s.energy_poll_interval == 300
    s = load_settings(
        {"AIFACTORY_CARBON_SIGNAL_TYPE": "marginal", "AIFACTORY_ENERGY_SIGNAL_MAX_AGE": "600"}
    )
    assert s.carbon_signal_type == "marginal" and s.energy_signal_max_age == 600
    with pytest.raises(SettingsError, match="AIFACTORY_CARBON_EMISSION_FACTOR_TYPE"):
        load_settings({"AIFACTORY_CARBON_EMISSION_FACTOR_TYPE": "scope2"})
