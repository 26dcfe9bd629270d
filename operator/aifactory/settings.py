"""Operator settings: environment variables over an optional YAML file over defaults.

Validated once at start-up so a typo in a Helm value or an env var stops the operator with a
message naming the setting, instead of surfacing as odd behaviour hours later.
Environment variables are `AIFACTORY_<FIELD>` in upper case (e.g. AIFACTORY_HEARTBEAT_INTERVAL);
the file is named by AIFACTORY_CONFIG and uses the field names as keys.
"""

from __future__ import annotations

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
        5.0,
        gt=0,
        description="Seconds before a deployment that has not settled (replicas starting, a "
        "move under way) is planned again if no event does it first; the wait doubles while "
        "nothing happens, up to resync_interval. Also the period of SovereigntyPolicy status.",
    )
    rebalance_interval: float = Field(
        300.0,
        gt=0,
        description="Seconds between the rebalancer's fleet-wide solves; a deployment takes at "
        "most one step towards each plan.",
    )
    hysteresis: float = Field(
        0.10,
        ge=0,
        lt=1,
        description="Fraction by which the rebalancer's plan must lower a deployment's cost "
        "before its replicas move (between rebalances a running placement is kept unless it "
        "breaks a hard rule).",
    )
    disruption_budget: int = Field(
        2,
        ge=1,
        description="Replicas of one deployment one step may move (drain, broken energy or "
        "latency rule, rebalance); the next step starts once every replica is Ready.",
    )
    demand_poll_interval: float = Field(
        15.0, gt=0, description="Seconds between reads of a deployment's live demand source."
    )
    solver_time_limit: float = Field(
        5.0, gt=0, description="Seconds one MILP solve of the fleet-wide optimiser may run."
    )
    # measured round-trip times (docs/latency.md)
    rtt_config_map: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="namespace/name of a ConfigMap whose *.csv keys hold measured RTTs "
        "(region,module,rttMs rows or a square matrix); they override the RTT model per pair.",
    )
    rtt_prometheus_url: str | None = Field(
        None, description="Prometheus base URL for measured RTTs (e.g. blackbox-exporter)."
    )
    rtt_prometheus_query: str | None = Field(
        None,
        description="Instant query giving RTT in ms per series with `region` and `module` "
        "labels; overrides the ConfigMap for the pairs it covers.",
    )
    rtt_poll_interval: float = Field(
        60.0, gt=0, description="Seconds between reads of the measured RTT sources."
    )
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
    earth_radius_km: float = Field(
        6371.0, gt=0, description="Earth radius in km, for great-circle distances."
    )
    route_factor: float = Field(1.6, ge=1, description="Real route length / great-circle length.")
    fibre_km_per_ms: float = Field(204.19, gt=0, description="Light in fibre, km per millisecond.")
    rtt_overhead_ms: float = Field(1.0, ge=0, description="Fixed RTT added to the distance term.")
    rtt_profile: Literal["brief", "calibrated-mean", "calibrated-p95"] | None = Field(
        None,
        description="Named constants of the RTT model (docs/latency.md): sets route_factor, "
        "fibre_km_per_ms and rtt_overhead_ms unless those are set explicitly.",
    )
    carbon_normaliser: float = Field(500.0, gt=0, description="gCO2e/kWh that costs 1.0.")
    unplaced_cost: float = Field(
        1000.0,
        gt=0,
        description="Cost of one unplaced replica above the deployment's guaranteed count "
        "(replicas.min or fixed).",
    )
    # InferenceRouters: Gateway API HTTPRoutes in member clusters (docs/cascades.md)
    tier_header: str = Field(
        "X-AIFactory-Tier",
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$",
        description="HTTP header whose value names the tier (its InferenceDeployment) in the "
        "HTTPRoutes the operator writes for InferenceRouters.",
    )
    tier_gateway: str = Field(
        "",
        max_length=317,
        description="Gateway those HTTPRoutes attach to, as namespace/name or name (the "
        "route's namespace); empty: none (attach them with your own parentRefs policy).",
    )
    # serving
    metrics_port: int = Field(
        8080, ge=0, le=65535, description="Port of /metrics and /readyz; 0 = off."
    )
    liveness_port: int = Field(8081, ge=0, le=65535, description="kopf liveness /healthz; 0 = off.")
    webhook_enabled: bool = Field(True, description="Serve the validating admission webhook.")
    webhook_host: str = Field("127.0.0.1", description="Host the apiserver reaches the webhook on.")
    webhook_port: int = Field(
        9443, ge=1, le=65535, description="Port the webhook server listens on (HTTPS)."
    )
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
    webhook_failure_policy: str = Field(
        "Fail",
        pattern="^(Fail|Ignore)$",
        description="What the apiserver does with InferenceDeployment writes when no operator "
        "replica answers: Fail keeps sovereignty enforced (writes wait for the operator), "
        "Ignore keeps GitOps flowing (placement still enforces; only admission is skipped). "
        "Deletes, finalizer and status changes are never sent to the webhook either way.",
    )
    webhook_timeout_seconds: int = Field(
        5, ge=1, le=30, description="Seconds the apiserver waits for the webhook."
    )
    webhook_service: str | None = Field(
        None,
        description="Not read by the operator (reserved): the chart's webhook configuration "
        "names its Service itself; a managed one uses https://webhook_host:webhook_port.",
    )
    namespace: str = Field(
        "aifactory-system", description="Namespace of the operator's own objects (the Lease)."
    )
    leader_election: bool = Field(
        False,
        description="Elect one active replica with a coordination.k8s.io Lease (run two or more "
        "replicas for HA); the others keep warm caches and answer admission.",
    )
    lease_name: str = Field("aifactory-operator", description="Name of the leader Lease.")
    lease_duration: float = Field(
        15.0, gt=0, description="Seconds a leader's Lease lasts without renewal."
    )
    lease_renew_deadline: float = Field(
        10.0, gt=0, description="Seconds the leader keeps trying to renew before stepping down."
    )
    lease_retry_period: float = Field(
        2.0, gt=0, description="Seconds between Lease acquire/renew attempts."
    )
    pod_name: str | None = Field(
        None, description="This replica's Pod name (downward API): its leader identity."
    )
    # safety and signal handling
    pending_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds a replica's pod may stay not Ready (Pending, usually) after its "
        "creation before it is reported (Degraded, PodsPending) and re-placed elsewhere; the "
        "module then takes none of the deployment's replicas for 4 times this (at least 300 s), "
        "doubled on each repeat, at most 3600 s.",
    )
    signal_tolerance_seconds: float = Field(
        60.0,
        ge=0,
        description="Seconds a live energy/carbon reading must keep differing from the "
        "effective value before placement uses it (short spikes move nothing).",
    )
    signal_tolerance_readings: int = Field(
        2, ge=1, description="Readings that must agree on the change before it takes effect."
    )
    demand_stabilization_window: float = Field(
        300.0,
        ge=0,
        description="Seconds of live demand readings whose maximum is used (scale up at once, "
        "down only after the window: the HPA's scaleDown stabilization).",
    )
    resync_interval: float = Field(
        30.0,
        gt=0,
        description="Seconds between re-plans of a settled deployment nothing touched, and the "
        "longest wait between re-plans of one that has not settled.",
    )
    batch_window: float = Field(
        0.05, ge=0, description="Seconds the placement loop waits to batch changes together."
    )
    member_qps: float = Field(
        50.0,
        ge=0,
        description="Requests per second to one member cluster (0 = unlimited); the hub gets "
        "twice this, at least 100.",
    )
    member_burst: int = Field(
        100,
        ge=1,
        description="Request burst to one member cluster; the hub gets twice this, at least 200.",
    )
    executor_threads: int = Field(
        8,
        ge=1,
        le=64,
        description="Threads applying changes to one cluster (each cluster has its own, so a "
        "slow one holds up only its own changes); also the hub writer's threads.",
    )
    advisory: bool = Field(
        False,
        description="Decide and report every placement (status, Events, metrics) without "
        "changing member clusters: see what the operator would do before letting it act.",
    )
    # accountability (decision records, compliance reports, reliability, measured SLOs)
    records_enabled: bool = Field(
        True,
        description="Append a hash-chained PlacementRecord to the hub for every placement "
        "change (aifactoryctl audit log / verify).",
    )
    records_max_count: int = Field(
        10_000,
        ge=1,
        description="PlacementRecords kept; older ones are deleted (the newest "
        "always stays, so the chain continues).",
    )
    records_max_age: float = Field(
        90 * 86400.0, ge=0, description="Seconds a PlacementRecord is kept (0 = no age limit)."
    )
    records_queue_limit: int = Field(
        10_000,
        ge=1,
        description="Records waiting for the hub at most (an outage); beyond it the oldest "
        "is dropped and counted (aifactory_records_dropped_total).",
    )
    records_signing_secret: str | None = Field(
        None,
        description="Secret holding an Ed25519 private key to sign records with, as "
        "namespace/name (or name, in the operator's namespace); unset = unsigned.",
    )
    records_signing_key: str = Field(
        "ed25519.pem",
        description="Key of records_signing_secret holding the key: PEM (PKCS#8, e.g. "
        "`openssl genpkey -algorithm ed25519`) or a 32-byte seed (raw or base64).",
    )
    reports_enabled: bool = Field(
        True,
        description="Write an OpenReports Report per InferenceDeployment bound by a "
        "SovereigntyPolicy (when the openreports.io CRDs are installed).",
    )
    reports_interval: float = Field(
        15.0, gt=0, description="Seconds between evaluations of the compliance reports."
    )
    reliability_window: float = Field(
        86400.0, gt=0, description="Seconds of the rolling window of module reliability."
    )
    reliability_status_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between status.reliability updates when nothing happened (an "
        "outage starting or ending is written at once).",
    )
    slo_poll_interval: float = Field(
        15.0,
        gt=0,
        description="Seconds between reads of a deployment's measured latency (spec.slo.measured).",
    )
    slo_breach_hold: float = Field(
        3600.0,
        ge=0,
        description="Seconds a (region, module) pair stays out of placement after an SLO "
        "breach that cleared because the module no longer serves the region.",
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        gt=0,
        description="Seconds after SIGTERM before the process exits whatever it is waiting on "
        "(keep below the Pod's terminationGracePeriodSeconds).",
    )

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
        if self.leader_election and not (
            self.lease_retry_period < self.lease_renew_deadline < self.lease_duration
        ):
            raise ValueError(
                "lease settings must satisfy lease_retry_period < lease_renew_deadline < "
                "lease_duration"
            )
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
