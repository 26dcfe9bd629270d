"""SovereigntyPolicy: where data of a given sensitivity may be processed, and by whom."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from aifactory.api.common import (
    CONDITIONS_SCHEMA_EXTRA,
    SET_LIST,
    ApiModel,
    Condition,
    DataClassification,
    JurisdictionToken,
    LabelSelector,
    NonEmptyName,
    Resource,
    StatusModel,
    find_condition,
    no_duplicates,
)
from aifactory.api.deployment import InferenceDeployment

_MAX_JURISDICTIONS = 300  # every country plus the groups, with room to spare


class DataResidency(StrEnum):
    """Whether each demand region must be served from its own jurisdiction."""

    NONE = "None"
    SAME_JURISDICTION_AS_DEMAND = "SameJurisdictionAsDemand"


class Enforcement(StrEnum):
    """Enforce blocks placement and admission; Audit only records violations."""

    ENFORCE = "Enforce"
    AUDIT = "Audit"


class SovereigntyPolicySpec(ApiModel):
    """Hard rules on modules, bound to deployments by namespace, labels and classification.

    Every policy that binds a deployment applies: the rules intersect.
    """

    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Binds deployments in namespaces with these labels; empty or unset selects every "
            "namespace."
        ),
    )
    deployment_selector: LabelSelector | None = Field(
        default=None,
        description="Binds only deployments with these labels; empty or unset selects all.",
    )
    data_classifications: Annotated[
        list[DataClassification], no_duplicates("dataClassifications")
    ] = Field(
        default_factory=list,
        max_length=len(DataClassification),
        description="Binds only deployments of these data classifications (no repeats); "
        "empty = all.",
        json_schema_extra=SET_LIST,
    )
    allowed_jurisdictions: Annotated[
        list[JurisdictionToken], no_duplicates("allowedJurisdictions")
    ] = Field(
        default_factory=list,
        max_length=_MAX_JURISDICTIONS,
        description=(
            "Modules must be in one of these ISO 3166-1 alpha-2 countries or groups (EU, EEA, "
            "FIVE_EYES, or a module's own jurisdiction tags), no repeats; empty allows any."
        ),
        json_schema_extra=SET_LIST,
    )
    denied_countries: Annotated[list[JurisdictionToken], no_duplicates("deniedCountries")] = Field(
        default_factory=list,
        max_length=_MAX_JURISDICTIONS,
        description="Modules in these countries (or groups) are never allowed; no repeats.",
        json_schema_extra=SET_LIST,
    )
    required_certifications: Annotated[
        list[NonEmptyName], no_duplicates("requiredCertifications")
    ] = Field(
        default_factory=list,
        max_length=32,
        description="Modules must hold every one of these certifications, e.g. ISO27001; "
        "no repeats.",
        json_schema_extra=SET_LIST,
    )
    operator_countries: Annotated[list[JurisdictionToken], no_duplicates("operatorCountries")] = (
        Field(
            default_factory=list,
            max_length=_MAX_JURISDICTIONS,
            description=(
                "The module's operator nationality must be one of these countries (or groups), no "
                "repeats; empty allows any."
            ),
            json_schema_extra=SET_LIST,
        )
    )
    denied_operator_countries: Annotated[
        list[JurisdictionToken], no_duplicates("deniedOperatorCountries")
    ] = Field(
        default_factory=list,
        max_length=_MAX_JURISDICTIONS,
        description="Modules run by operators of these countries (or groups) are never allowed; "
        "no repeats.",
        json_schema_extra=SET_LIST,
    )
    require_air_gapped: bool = Field(default=False, description="Only air-gapped modules.")
    data_residency: DataResidency = Field(
        default=DataResidency.NONE,
        description=(
            "SameJurisdictionAsDemand: a region's users are only served from modules that share "
            "a jurisdiction named in allowedJurisdictions with the region's country (or are in "
            "that country). None: no per-region rule."
        ),
    )
    enforcement: Enforcement = Field(
        default=Enforcement.ENFORCE,
        description="Enforce: never place on a disallowed module, reject at admission. "
        "Audit: record violations only.",
    )


class PolicyViolation(StatusModel):
    """A bound deployment running (or, under Enforce, wanting to run) against this policy."""

    deployment: str = Field(description="namespace/name of the InferenceDeployment.")
    module: str | None = Field(default=None, description="Module involved, if any.")
    reason: str = Field(
        default="Violation", description="CamelCase reason, e.g. JurisdictionNotAllowed."
    )
    message: str = Field(default="", description="Human-readable details.")
    since: datetime | None = Field(default=None, description="When the violation was first seen.")


class SovereigntyPolicyStatus(StatusModel):
    """Which deployments the policy binds and what it found."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions, e.g. Ready.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )
    bound_deployments: list[str] = Field(
        default_factory=list, description="Bound deployments as namespace/name."
    )
    bound_count: int | None = Field(
        default=None, ge=0, description="Number of bound deployments (printer column)."
    )
    violations: list[PolicyViolation] = Field(
        default_factory=list, description="Current violations (Audit) or refusals (Enforce)."
    )

    def summarized(self) -> SovereigntyPolicyStatus:
        """This status with boundCount recomputed."""
        return self.model_copy(update={"bound_count": len(self.bound_deployments)})


class SovereigntyPolicy(Resource):
    """Data-sovereignty rules that bind deployments and restrict their modules.

    Cluster-scoped so a platform or compliance team owns it, not the teams it constrains.
    """

    KIND: ClassVar[str] = "SovereigntyPolicy"
    PLURAL: ClassVar[str] = "sovereigntypolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sovpol",)
    NAMESPACED: ClassVar[bool] = False

    kind: Literal["SovereigntyPolicy"] = "SovereigntyPolicy"
    spec: SovereigntyPolicySpec
    status: SovereigntyPolicyStatus | None = None

    def binds(
        self, deployment: InferenceDeployment, namespace_labels: Mapping[str, str] | None
    ) -> bool:
        """True when this policy applies to `deployment` (in a namespace with those labels).

        A deployment naming the policy in spec.sovereigntyPolicies is bound regardless of the
        selectors and classifications: it asked for it. Otherwise the namespace selector, the
        deployment selector and the classification list must all match (empty = all).
        """
        if self.metadata.name in deployment.spec.sovereignty_policies:
            return True
        spec = self.spec
        if spec.data_classifications and (
            deployment.spec.data_classification not in spec.data_classifications
        ):
            return False
        if spec.namespace_selector is not None and not spec.namespace_selector.matches(
            namespace_labels
        ):
            return False
        return spec.deployment_selector is None or spec.deployment_selector.matches(
            deployment.metadata.labels
        )

    @property
    def enforced(self) -> bool:
        return self.spec.enforcement is Enforcement.ENFORCE

    def condition(self, type_: str) -> Condition | None:
        return find_condition(self.status.conditions, type_) if self.status else None


__all__ = [
    "DataResidency",
    "Enforcement",
    "PolicyViolation",
    "SovereigntyPolicy",
    "SovereigntyPolicySpec",
    "SovereigntyPolicyStatus",
]
