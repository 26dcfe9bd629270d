"""`scheduling.k8s.io/v1` PriorityClass: a Kubernetes kind the operator reads, never defines.

Only the fields placement needs are modelled (value, globalDefault, preemptionPolicy); the
limits are Kubernetes' own (a user class's value is at most one billion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aifactory.api.common import ObjectMeta

API_VERSION = "scheduling.k8s.io/v1"
KIND = "PriorityClass"
#: Highest value a user-defined class may have (system classes are above it).
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000


class PriorityClass(BaseModel):
    """A PriorityClass manifest (unknown fields such as description are kept, not checked)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    metadata: ObjectMeta
    value: int = Field(ge=-2_147_483_648, le=HIGHEST_USER_DEFINABLE_PRIORITY)
    global_default: bool = False
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> PriorityClass:
        """Parse and validate a manifest dict."""
        return cls.model_validate(dict(manifest))

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.metadata.name
