"""Operator settings: environment variables over an optional YAML file over defaults.

Validated once at start-up so a typo in a Helm value or an env var stops the operator with a
message naming the setting, instead of surfacing as odd behaviour hours later.
Environment variables are `AIFACTORY_<FIELD>` in upper case (e.g. AIFACTORY_HEARTBEAT_INTERVAL);
the file is named by AIFACTORY_CONFIG and uses the field names as keys.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aifactory.placement.rtt import RTT_PROFILES


class SettingsError(ValueError):
    """Settings are invalid; the message lists each bad setting."""


class OperatorSettings(BaseModel):
    """Every knob of the operator, with the unit in its name or description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heartbeat_interval: float = Field(10.0, gt=0, description="Seconds between module heartbeats.")
    heartbeat_timeout: float = Field(
        30.0, gt=0, description="Seconds without a heartbeat before a module is NotReady."
    )
    toleration_seconds: float = Field(
        60.0, ge=0, description="Seconds a module may be NotReady before its replicas move."
    )
    status_interval: float = Field(
        5.0, gt=0, description="Seconds between InferenceDeployment status refreshes."
    )
    rebalance_interval: float = Field(
        300.0, gt=0, description="Seconds between fleet-wide re-solves."
    )
    hysteresis: float = Field(
        0.10, ge=0, lt=1, description="Fraction a new placement must lower cost by to replace one."
    )
    disruption_budget: int = Field(
        2, ge=1, description="Replicas one deployment may move per rebalance interval."
    )
    demand_poll_interval: float = Field(
        15.0, gt=0, description="Seconds between reads of a deployment's live demand source."
    )
    solver_time_limit: float = Field(5.0, gt=0, description="Seconds the fleet MILP may run.")
    # live carbon signals (spec.energy.signal; docs/signals.md)
    energy_poll_interval: float = Field(
        300.0, gt=0, description="Seconds between reads of a module's spec.energy.signal feed."
    )
    energy_signal_max_age: float = Field(
        10800.0,
        gt=0,
        description="Seconds after its data time a carbon reading is stale: the module then "
        "falls back to its declared carbon intensity (condition EnergySignal, reason Stale).",
    )
    carbon_signal_type: Literal["average", "marginal"] = Field(
        "average",
        description="Signal type every module's live reading must have to be used; others fall "
        "back to the declared value (reason MethodMismatch), so one decision never mixes them.",
    )
    carbon_emission_factor_type: Literal["lifecycle", "direct"] = Field(
        "lifecycle",
        description="Emission factors every live reading must use (and the ones requested from "
        "Electricity Maps when a signal does not say).",
    )
    # latency and cost model (BRIEF "Placement semantics")
    earth_radius_km: float = Field(6371.0, gt=0)
    route_factor: float = Field(1.6, ge=1, description="Real route length / great-circle length.")
    fibre_km_per_ms: float = Field(204.19, gt=0, description="Light in fibre, km per millisecond.")
    rtt_overhead_ms: float = Field(1.0, ge=0, description="Fixed RTT added to the distance term.")
    rtt_profile: Literal["brief", "calibrated-mean", "calibrated-p95"] | None = Field(
        None,
        description="Named constants of the RTT model (docs/latency.md): sets route_factor, "
        "fibre_km_per_ms and rtt_overhead_ms unless those are set explicitly.",
    )
    carbon_normaliser: float = Field(500.0, gt=0, description="gCO2e/kWh that costs 1.0.")
    unplaced_cost: float = Field(1000.0, gt=0, description="Cost of one unplaced replica.")
    # serving
    metrics_port: int = Field(8080, ge=0, le=65535, description="Prometheus /metrics; 0 = off.")
    liveness_port: int = Field(8081, ge=0, le=65535, description="kopf liveness /healthz; 0 = off.")
    webhook_enabled: bool = Field(True, description="Serve the validating admission webhook.")
    webhook_host: str = Field("127.0.0.1", description="Host the apiserver reaches the webhook on.")
    webhook_port: int = Field(9443, ge=1, le=65535)
    webhook_listen: str = Field("0.0.0.0", description="Address the webhook server binds.")
    webhook_cert_file: Path | None = Field(
        None, description="Serving certificate (PEM); unset = generate a self-signed one."
    )
    webhook_key_file: Path | None = Field(None, description="Private key of webhook_cert_file.")
    webhook_ca_file: Path | None = Field(
        None, description="CA bundle the apiserver trusts for the webhook (default: the cert)."
    )
    webhook_managed: bool = Field(
        True,
        description="Let the operator create and patch its ValidatingWebhookConfiguration; "
        "false when a Helm chart renders it (in-cluster Service and mounted certificate).",
    )
    webhook_service: str | None = Field(
        None, description="In-cluster webhook Service as namespace/name (else host:port URL)."
    )
    namespace: str = Field(
        "aifactory-system", description="Namespace of the operator's own objects."
    )
    peering_priority: int = Field(
        0, description="kopf peering priority; distinct per replica for HA (0 = from pod_name)."
    )
    peering_lifetime: int = Field(
        60,
        ge=2,
        description="Seconds a replica's peering record lives without a keep-alive: how long a "
        "standby waits for a crashed active replica before taking over.",
    )
    pod_name: str | None = Field(
        None,
        description="This replica's Pod name (downward API); with peering and no "
        "peering_priority, a stable priority distinct per Pod is derived from it.",
    )
    standalone: bool = Field(True, description="Run without kopf peering (single replica).")

    @property
    def effective_peering_priority(self) -> int:
        """peering_priority, else one derived from pod_name: kopf freezes every replica when
        two share a priority, so each Pod of a Deployment needs its own."""
        if self.peering_priority or not self.pod_name:
            return self.peering_priority
        digest = hashlib.sha256(self.pod_name.encode()).digest()
        return 1 + int.from_bytes(digest[:4], "big") % (2**31 - 2)

    @model_validator(mode="before")
    @classmethod
    def _rtt_profile_defaults(cls, data: Any) -> Any:
        """A profile supplies the RTT constants the input does not set itself."""
        if isinstance(data, dict) and data.get("rtt_profile") in RTT_PROFILES:
            p = RTT_PROFILES[data["rtt_profile"]]
            return {
                "route_factor": p.route_factor,
                "fibre_km_per_ms": p.fibre_km_per_ms,
                "rtt_overhead_ms": p.overhead_ms,
                **data,
            }
        return data

    @model_validator(mode="after")
    def _consistent(self) -> OperatorSettings:
        if self.heartbeat_timeout < self.heartbeat_interval:
            raise ValueError("heartbeat_timeout must be at least heartbeat_interval")
        if (self.webhook_cert_file is None) != (self.webhook_key_file is None):
            raise ValueError("webhook_cert_file and webhook_key_file must be set together")
        return self


ENV_PREFIX = "AIFACTORY_"


def load_settings(environ: dict[str, str] | None = None) -> OperatorSettings:
    """Read and validate settings; raises SettingsError naming every invalid setting."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_path = env.get(f"{ENV_PREFIX}CONFIG")
    if config_path:
        try:
            loaded = yaml.safe_load(Path(config_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read {ENV_PREFIX}CONFIG={config_path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{config_path}: expected a mapping of setting names to values")
        values.update(loaded)
    for name in OperatorSettings.model_fields:
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env:
            values[name] = env[key]
    try:
        return OperatorSettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"])
            where = f"{loc} ({ENV_PREFIX}{loc.upper()})" if loc else "settings"
            problems.append(f"{where}: {err['msg']}")
        raise SettingsError("invalid operator settings: " + "; ".join(problems)) from None
