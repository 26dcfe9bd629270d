"""Environment variables of the model server, typed as core/v1 EnvVar.

The operator copies `spec.model.env` into the member clusters' Deployments, so an entry the
member would refuse must be refused here first: otherwise the hub stores it and the member
answers every apply with a 422. The rules are those of Kubernetes 1.36
(`pkg/apis/core/validation.ValidateEnv` with relaxed environment variable names, GA since
1.34): a name of printable ASCII characters other than '=', `value` and `valueFrom` not both,
and `valueFrom` with exactly one source.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from aifactory.api.common import (
    LABEL_KEY_PATTERN,
    MAX_NAME_LENGTH,
    ApiModel,
    ObjectName,
    cel_rule,
)
from aifactory.api.limits import MAX_ENV_VALUE_LENGTH

#: Printable ASCII (0x20-0x7E) except '=' (0x3D), as k8s IsRelaxedEnvVarName.
ENV_NAME_PATTERN = r"^[ -<>-~]+$"
ENV_NAME_MESSAGE = (
    "model.env[].name must consist only of printable ASCII characters other than '=' "
    "(Kubernetes rejects other names)"
)
VALUE_WITH_VALUE_FROM_MESSAGE = "model.env[].valueFrom may not be set when value is not empty"
ONE_SOURCE_MESSAGE = (
    "model.env[].valueFrom must set exactly one of secretKeyRef, configMapKeyRef, fieldRef or "
    "resourceFieldRef"
)
#: A ConfigMap or Secret key (k8s IsConfigMapKey).
CONFIG_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
CONFIG_KEY_MESSAGE = (
    "key must be a ConfigMap or Secret key: at most 253 alphanumeric characters, '-', '_' or "
    "'.', not '.' and not starting with '..'"
)
FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
#: metadata.labels['KEY'] or metadata.annotations['KEY'], KEY a label key.
SUBSCRIPT_FIELD_PATH_PATTERN = (
    r"^metadata\.(labels|annotations)\['" + LABEL_KEY_PATTERN.strip("^$") + r"'\]$"
)
FIELD_PATH_MESSAGE = (
    "fieldRef.fieldPath must be one of " + ", ".join(FIELD_PATHS) + ", "
    "metadata.labels['KEY'] or metadata.annotations['KEY']"
)
RESOURCES = (
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
)
HUGEPAGES_PREFIXES = ("limits.hugepages-", "requests.hugepages-")
RESOURCE_MESSAGE = (
    "resourceFieldRef.resource must be one of " + ", ".join(RESOURCES) + ", "
    "limits.hugepages-SIZE or requests.hugepages-SIZE"
)
CPU_DIVISORS = ("1m", "1")
OTHER_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
DIVISOR_MESSAGE = (
    "resourceFieldRef.divisor must be "
    + " or ".join(CPU_DIVISORS)
    + " for cpu and one of "
    + ", ".join(OTHER_DIVISORS)
    + " otherwise"
)

_ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)
_CONFIG_KEY_RE = re.compile(CONFIG_KEY_PATTERN)
_SUBSCRIPT_RE = re.compile(SUBSCRIPT_FIELD_PATH_PATTERN)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ",".join(f"'{v}'" for v in values) + "]"


def _check_config_key(key: str) -> str:
    if not _CONFIG_KEY_RE.match(key) or key == "." or key.startswith(".."):
        raise ValueError(f"{CONFIG_KEY_MESSAGE}; got {key!r}")
    return key


ConfigKey = Annotated[
    str,
    AfterValidator(_check_config_key),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [
                cel_rule(
                    f"self.matches(r'{CONFIG_KEY_PATTERN}') && self != '.' && "
                    "!self.startsWith('..')",
                    CONFIG_KEY_MESSAGE,
                )
            ],
        }
    ),
]


class SecretKeySelector(ApiModel):
    """A key of a Secret in the deployment's namespace on the member cluster (core/v1)."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: ConfigKey = Field(description="Key of the Secret whose value is used.")
    optional: bool | None = Field(
        default=None, description="true: start the container even when the key is missing."
    )


class ConfigMapKeySelector(ApiModel):
    """A key of a ConfigMap in the deployment's namespace on the member cluster (core/v1)."""

    name: ObjectName = Field(description="Name of the ConfigMap.")
    key: ConfigKey = Field(description="Key of the ConfigMap whose value is used.")
    optional: bool | None = Field(
        default=None, description="true: start the container even when the key is missing."
    )


class ObjectFieldSelector(ApiModel):
    """A field of the Pod itself (the downward API), e.g. metadata.name (core/v1)."""

    api_version: Literal["v1"] = Field(
        default="v1", description="Version of the schema fieldPath is written in: v1."
    )
    field_path: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH + 32,
        description="Path of the field, e.g. metadata.name or metadata.labels['KEY'].",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    f"self in {_cel_list(FIELD_PATHS)} || "
                    f'self.matches(r"{SUBSCRIPT_FIELD_PATH_PATTERN}")',
                    FIELD_PATH_MESSAGE,
                )
            ]
        },
    )

    @field_validator("field_path")
    @classmethod
    def _supported(cls, path: str) -> str:
        if path not in FIELD_PATHS and not _SUBSCRIPT_RE.match(path):
            raise ValueError(f"{FIELD_PATH_MESSAGE}; got {path!r}")
        return path


#: A resource.Quantity as Kubernetes accepts it: an integer or a string.
IntOrString = Annotated[str | int, WithJsonSchema({"x-kubernetes-int-or-string": True})]


class ResourceFieldSelector(ApiModel):
    """A resource limit or request of a container, e.g. limits.memory (core/v1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # int-or-string has no maxLength: compare without converting (an integer
                # divisor can only be 1), which keeps the rule's estimated cost bounded.
                cel_rule(
                    "!has(self.divisor) || (type(self.divisor) == int ? self.divisor == 1 : "
                    f"self.resource.endsWith('.cpu') ? self.divisor in {_cel_list(CPU_DIVISORS)} "
                    f": self.divisor in {_cel_list(OTHER_DIVISORS)})",
                    DIVISOR_MESSAGE,
                    field_path=".divisor",
                )
            ]
        }
    )

    container_name: str | None = Field(
        default=None,
        max_length=63,
        description="Container whose resources are read; the model server's by default.",
    )
    resource: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Resource to expose, e.g. limits.memory or requests.cpu.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    f"self in {_cel_list(RESOURCES)} || "
                    + " || ".join(f"self.startsWith('{p}')" for p in HUGEPAGES_PREFIXES),
                    RESOURCE_MESSAGE,
                )
            ]
        },
    )
    divisor: IntOrString | None = Field(
        default=None, description="Unit of the exposed value, e.g. 1Mi (default 1)."
    )

    @field_validator("resource")
    @classmethod
    def _supported(cls, resource: str) -> str:
        if resource not in RESOURCES and not resource.startswith(HUGEPAGES_PREFIXES):
            raise ValueError(f"{RESOURCE_MESSAGE}; got {resource!r}")
        return resource

    @model_validator(mode="after")
    def _divisor_fits_resource(self) -> Self:
        if self.divisor is None:
            return self
        allowed = CPU_DIVISORS if self.resource.endswith(".cpu") else OTHER_DIVISORS
        if str(self.divisor) not in allowed:
            raise ValueError(f"{DIVISOR_MESSAGE}; got {self.divisor!r} for {self.resource}")
        return self


class EnvVarSource(ApiModel):
    """Where a variable's value comes from: exactly one source (core/v1 EnvVarSource)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    " + ".join(
                        f"(has(self.{f}) ? 1 : 0)"
                        for f in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")
                    )
                    + " == 1",
                    ONE_SOURCE_MESSAGE,
                )
            ]
        }
    )

    secret_key_ref: SecretKeySelector | None = Field(
        default=None, description="A key of a Secret in the deployment's namespace."
    )
    config_map_key_ref: ConfigMapKeySelector | None = Field(
        default=None, description="A key of a ConfigMap in the deployment's namespace."
    )
    field_ref: ObjectFieldSelector | None = Field(
        default=None, description="A field of the Pod, e.g. metadata.name."
    )
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource limit or request of the container."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        sources = (
            self.secret_key_ref,
            self.config_map_key_ref,
            self.field_ref,
            self.resource_field_ref,
        )
        count = sum(s is not None for s in sources)
        if count != 1:
            raise ValueError(f"{ONE_SOURCE_MESSAGE}; got {count}")
        return self


class EnvVar(ApiModel):
    """An environment variable of the model server container, as in a Pod spec (core/v1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.valueFrom) || !has(self.value) || size(self.value) == 0",
                    VALUE_WITH_VALUE_FROM_MESSAGE,
                    field_path=".valueFrom",
                )
            ]
        }
    )

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Variable name: printable ASCII characters other than '='.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(f"self.matches(r'{ENV_NAME_PATTERN}')", ENV_NAME_MESSAGE)
            ]
        },
    )
    value: str | None = Field(
        default=None, max_length=MAX_ENV_VALUE_LENGTH, description="Literal value."
    )
    value_from: EnvVarSource | None = Field(
        default=None,
        description="Source of the value (secretKeyRef, configMapKeyRef, fieldRef or "
        "resourceFieldRef); not together with a non-empty value.",
    )

    @field_validator("name")
    @classmethod
    def _printable_ascii(cls, name: str) -> str:
        if not _ENV_NAME_RE.match(name):
            raise ValueError(f"{ENV_NAME_MESSAGE}; got {name!r}")
        return name

    @model_validator(mode="after")
    def _value_or_value_from(self) -> Self:
        if self.value_from is not None and self.value:
            raise ValueError(VALUE_WITH_VALUE_FROM_MESSAGE)
        return self


__all__ = [
    "ConfigMapKeySelector",
    "EnvVar",
    "EnvVarSource",
    "ObjectFieldSelector",
    "ResourceFieldSelector",
    "SecretKeySelector",
]
