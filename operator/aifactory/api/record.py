"""PlacementRecord: one placement change, written once, hash-chained to the one before it.

Every change of where an InferenceDeployment's replicas run (initial placement, scale,
failover, rebalance, preemption, drain, policy-driven removal, deletion) appends a record to
one chain per hub: what ran before and after, per module and demand region, why, the engine's
cost terms, what the decision saw (digests of module energy and readiness, the bound policies'
resourceVersions, demand), and the SHA-256 of the record before it (`aifactory.audit.chain`).

A record is never updated: the CRD refuses any change of `spec` (CEL `self == oldSelf`), and
`aifactoryctl audit verify` recomputes every hash and link, so a record deleted and written
again with other content (what someone with etcd or admin access could do) is named.

The schema sets no defaults: the apiserver must store exactly the fields the operator hashed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from aifactory.api.common import (
    MAX_NAME_LENGTH,
    MAX_SHORT_STRING,
    ApiModel,
    Resource,
    cel_rule,
)

IMMUTABLE_MESSAGE = "PlacementRecord spec is immutable: a record is written once and never changed"
#: Bounds that keep one record small and the immutability rule's CEL cost within budget.
MAX_CELLS = 512
MAX_RECORD_MODULES = 256
MAX_RECORD_POLICIES = 64
MAX_REGIONS = 64
MAX_RECORD_MESSAGE = 1024
HEX_DIGEST = r"^[0-9a-f]{64}$"


class RecordedDeployment(ApiModel):
    """The InferenceDeployment the change is about."""

    namespace: str = Field(min_length=1, max_length=MAX_SHORT_STRING, description="Namespace.")
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Name.")
    uid: str | None = Field(default=None, max_length=64, description="metadata.uid.")
    generation: int | None = Field(default=None, ge=0, description="metadata.generation seen.")
    data_classification: str | None = Field(
        default=None, max_length=MAX_SHORT_STRING, description="spec.dataClassification."
    )


class RecordedCell(ApiModel):
    """Replicas on one module serving one demand region ("" for no demand regions)."""

    module: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Module name.")
    region: str = Field(max_length=MAX_SHORT_STRING, description="Demand region, or empty.")
    replicas: int = Field(ge=0, description="Replicas.")


class RecordedModule(ApiModel):
    """What the decision knew about one module it moved replicas from or to."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Module name.")
    country: str | None = Field(default=None, max_length=2, description="location.country.")
    ready: bool | None = Field(default=None, description="Usable for placement this cycle.")
    carbon_intensity: float | None = Field(
        default=None, ge=0, description="Effective gCO2e/kWh placement used."
    )
    renewable_share: float | None = Field(
        default=None, ge=0, le=1, description="Effective renewable share placement used."
    )
    ready_fraction: float | None = Field(
        default=None, ge=0, le=1, description="status.reliability.readyFraction placement used."
    )


class RecordedPolicy(ApiModel):
    """A SovereigntyPolicy bound to the deployment when it was decided."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Policy name.")
    resource_version: str | None = Field(
        default=None, max_length=MAX_SHORT_STRING, description="metadata.resourceVersion seen."
    )
    enforcement: str | None = Field(default=None, max_length=16, description="Enforce or Audit.")


class RecordedCost(ApiModel):
    """The engine's cost of the placement after the change, term by term (lower is better)."""

    total: float | None = Field(default=None, description="Sum of the terms below.")
    latency: float | None = Field(default=None, description="Latency term over all replicas.")
    carbon: float | None = Field(default=None, description="Carbon term over all replicas.")
    reliability: float | None = Field(default=None, description="Reliability term.")
    previous_total: float | None = Field(
        default=None, description="The placement before the change, costed the same way."
    )
    unplaced_replicas: int | None = Field(
        default=None, ge=0, description="Replicas wanted but placed nowhere."
    )


class RecordedFleetPlan(ApiModel):
    """The rebalancer's last fleet-wide plan, when the change was a step towards it."""

    cost: float | None = Field(default=None, description="Fleet plan total cost.")
    lower_bound: float | None = Field(default=None, description="Proven lower bound on it.")
    gap: float | None = Field(default=None, description="cost / lowerBound - 1.")
    solver: str | None = Field(default=None, max_length=MAX_SHORT_STRING, description="Solver.")
    made_at: str | None = Field(default=None, max_length=32, description="When it was solved.")


class RecordedInputs(ApiModel):
    """SHA-256 digests of what the decision saw (hex)."""

    modules: str | None = Field(
        default=None,
        pattern=HEX_DIGEST,
        description="Every module's name, readiness, energy and reliability as the engine saw "
        "them.",
    )
    policies: str | None = Field(
        default=None,
        pattern=HEX_DIGEST,
        description="Names, resourceVersions and enforcement of the bound policies.",
    )
    demand: str | None = Field(
        default=None, pattern=HEX_DIGEST, description="Requests per second per demand region."
    )


class PlacementRecordSpec(ApiModel):
    """One placement change of one InferenceDeployment, as decided."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [cel_rule("self == oldSelf", IMMUTABLE_MESSAGE)]
        }
    )

    sequence: int = Field(ge=1, description="Position in the hub's chain, from 1.")
    time: str = Field(
        min_length=1, max_length=32, description="When the change was decided (RFC 3339, UTC)."
    )
    deployment: RecordedDeployment = Field(description="The InferenceDeployment.")
    reason: str = Field(
        min_length=1,
        max_length=MAX_SHORT_STRING,
        description="Placed, Scaled, Rescheduled, Rebalanced, Failover, Drained, "
        "ComplianceRemoval, Preempted, SLOBreach or Deleted.",
    )
    message: str | None = Field(
        default=None, max_length=MAX_RECORD_MESSAGE, description="The change in words."
    )
    before: list[RecordedCell] | None = Field(
        default=None, max_length=MAX_CELLS, description="Replicas per module and region before."
    )
    after: list[RecordedCell] | None = Field(
        default=None, max_length=MAX_CELLS, description="Replicas per module and region after."
    )
    modules: list[RecordedModule] | None = Field(
        default=None,
        max_length=MAX_RECORD_MODULES,
        description="Facts about the modules in before and after, as the decision used them.",
    )
    policies: list[RecordedPolicy] | None = Field(
        default=None, max_length=MAX_RECORD_POLICIES, description="Bound SovereigntyPolicies."
    )
    demand: dict[str, float] | None = Field(
        default=None,
        description="Requests per second per demand region the decision placed for.",
        json_schema_extra={"maxProperties": MAX_REGIONS},
    )
    cost: RecordedCost | None = Field(default=None, description="Cost terms of the placement.")
    fleet_plan: RecordedFleetPlan | None = Field(
        default=None, description="The rebalancer's plan (cost, lower bound, gap)."
    )
    inputs: RecordedInputs | None = Field(default=None, description="Digests of the inputs.")
    previous_hash: str = Field(
        max_length=64,
        pattern=r"^([0-9a-f]{64})?$",
        description="SHA-256 (hex) of the record before this one; empty for the first.",
    )
    key_id: str | None = Field(
        default=None,
        max_length=64,
        description="First 16 hex digits of the SHA-256 of the Ed25519 public key that signed "
        "this record (when signed).",
    )
    hash: str = Field(
        pattern=HEX_DIGEST,
        description="SHA-256 (hex) of this spec's canonical JSON without hash and signature.",
    )
    signature: str | None = Field(
        default=None, max_length=128, description="Ed25519 signature of hash (base64)."
    )


class PlacementRecord(Resource):
    """A placement change, written once and chained by SHA-256 to the one before it.

    Cluster-scoped: one chain per hub, kept by the operator's leader; retention by count and
    age. `aifactoryctl audit log` prints them, `aifactoryctl audit verify` checks the chain.
    """

    KIND: ClassVar[str] = "PlacementRecord"
    PLURAL: ClassVar[str] = "placementrecords"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("plrec",)
    NAMESPACED: ClassVar[bool] = False
    #: Not in the `aifactory` category: `kubectl get aifactory` should not list thousands.
    CATEGORIES: ClassVar[tuple[str, ...]] = ("aifactory-audit",)

    kind: Literal["PlacementRecord"] = "PlacementRecord"
    spec: PlacementRecordSpec


__all__ = [
    "IMMUTABLE_MESSAGE",
    "PlacementRecord",
    "PlacementRecordSpec",
    "RecordedCell",
    "RecordedCost",
    "RecordedDeployment",
    "RecordedFleetPlan",
    "RecordedInputs",
    "RecordedModule",
    "RecordedPolicy",
]
