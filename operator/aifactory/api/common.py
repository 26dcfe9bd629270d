"""Building blocks shared by every aifactory.dev resource.

The pydantic models in this package are the single source of the API: the CRDs are generated
from their JSON schema (see `crds.py`), the operator reads cluster objects through them and
`aifactoryctl` validates files offline with them. Rules the OpenAPI schema cannot express are
written twice, as a CEL rule for the apiserver and as a pydantic validator for offline use; both
live next to each other and share one message so users see the same words either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from aifactory.api.jurisdictions import (
    ISO_COUNTRIES,
    JURISDICTION_TOKENS,
    is_country,
    is_jurisdiction,
)

API_GROUP = "aifactory.dev"
API_VERSION = "v1alpha1"
#: The `apiVersion` every aifactory.dev object carries.
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

#: A JSON-schema fragment, as pydantic's json_schema_extra takes it.
JsonDict = dict[str, Any]

#: Limits that keep CEL rules within the apiserver's cost budget and objects reasonably small.
MAX_NAME_LENGTH = 253
MAX_SHORT_STRING = 63
MAX_LIST_ITEMS = 64
#: Entries of a label map (matchLabels, nodeSelector); bounds the CEL cost of checking keys.
MAX_LABELS = 64


def cel_rule(rule: str, message: str, *, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; `field_path` points the error at a child field."""
    out: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    return out


def _cel_string_list(values: Iterable[str]) -> str:
    return "[" + ",".join(f"'{v}'" for v in sorted(values)) + "]"


class ApiModel(BaseModel):
    """Base of every API object part: camelCase on the wire, snake_case in Python.

    Unknown fields are rejected, as `kubectl apply` does with strict field validation, so a typo
    in a file is caught offline too. Infinities and NaN are refused: JSON cannot carry them, so
    they can only come from a YAML file (`.inf`) or a buggy caller.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=False,
        allow_inf_nan=False,
    )


class StatusModel(ApiModel):
    """Base of status parts: tolerant of fields written by a newer operator version."""

    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------------------------
# Countries and jurisdictions

COUNTRY_MESSAGE = (
    "must be an assigned ISO 3166-1 alpha-2 country code in upper case, e.g. IS, DE, US"
)
JURISDICTION_MESSAGE = (
    "must be an ISO 3166-1 alpha-2 country code or a jurisdiction group (EU, EEA, FIVE_EYES)"
)


def _check_country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"{COUNTRY_MESSAGE}; got {value!r}")
    return value


def _check_jurisdiction(value: str) -> str:
    if not is_jurisdiction(value):
        raise ValueError(f"{JURISDICTION_MESSAGE}; got {value!r}")
    return value


#: An ISO 3166-1 alpha-2 code. The CRD checks the shape with a pattern and membership with CEL,
#: so a typo like `UK` is refused with a message rather than a 249-value enum dump.
CountryCode = Annotated[
    str,
    AfterValidator(_check_country),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[A-Z]{2}$",
            "maxLength": 2,
            "x-kubernetes-validations": [
                cel_rule(f"self in {_cel_string_list(ISO_COUNTRIES)}", COUNTRY_MESSAGE)
            ],
        }
    ),
]

#: A country code or a group name (EU, EEA, FIVE_EYES), as sovereignty rules may name either.
JurisdictionToken = Annotated[
    str,
    AfterValidator(_check_jurisdiction),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 16,
            "x-kubernetes-validations": [
                cel_rule(f"self in {_cel_string_list(JURISDICTION_TOKENS)}", JURISDICTION_MESSAGE)
            ],
        }
    ),
]


# --------------------------------------------------------------------------------------------
# Kubernetes names and labels: the rules of k8s.io/apimachinery/pkg/api/validate/content, as
# regular expressions both CEL (RE2) and Python read the same way. CEL strings are raw (r'...')
# so backslashes reach the regex engine unchanged.

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
#: An object name (RFC 1123 subdomain), at most 253 characters.
DNS_SUBDOMAIN_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"
#: A label key: optional DNS subdomain prefix (<= 253 characters) and '/', then a name <= 63.
LABEL_KEY_PATTERN = rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?{_LABEL_NAME}$"
#: A label value: empty, or a name of at most 63 characters.
LABEL_VALUE_PATTERN = rf"^({_LABEL_NAME})?$"
MAX_LABEL_KEY_LENGTH = 253 + 1 + 63
MAX_LABEL_VALUE_LENGTH = 63

OBJECT_NAME_MESSAGE = (
    "must be an object name (lowercase RFC 1123 subdomain): at most 253 lower case "
    "alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character"
)
LABEL_KEY_MESSAGE = (
    "must be a label key: an optional DNS subdomain prefix of at most 253 characters and '/', "
    "then a name of at most 63 alphanumeric characters, '-', '_' or '.', starting and ending "
    "with an alphanumeric character, e.g. aifactory.dev/tier"
)
LABEL_VALUE_MESSAGE = (
    "must be a label value: empty, or at most 63 alphanumeric characters, '-', '_' or '.', "
    "starting and ending with an alphanumeric character"
)
LABEL_MAP_KEYS_MESSAGE = f"every key {LABEL_KEY_MESSAGE}"

_DNS_SUBDOMAIN_RE = re.compile(DNS_SUBDOMAIN_PATTERN)
_LABEL_KEY_RE = re.compile(LABEL_KEY_PATTERN)
_LABEL_VALUE_RE = re.compile(LABEL_VALUE_PATTERN)

#: CEL: `self` (a string) is a label key; the prefix length is the part a regex cannot bound.
_CEL_LABEL_KEY = f"self.indexOf('/') <= 253 && self.matches(r'{LABEL_KEY_PATTERN}')"


def is_object_name(value: str) -> bool:
    """True for a valid Kubernetes object name (RFC 1123 subdomain, <= 253 characters)."""
    return len(value) <= 253 and _DNS_SUBDOMAIN_RE.match(value) is not None


def is_label_key(value: str) -> bool:
    """True for a valid label key (k8s IsQualifiedName): [prefix/]name."""
    return (
        len(value) <= MAX_LABEL_KEY_LENGTH
        and value.find("/") <= 253
        and _LABEL_KEY_RE.match(value) is not None
    )


def is_label_value(value: str) -> bool:
    """True for a valid label value: empty or a name of at most 63 characters."""
    return len(value) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE_RE.match(value) is not None


def _checker(test: Callable[[str], bool], message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not test(value):
            raise ValueError(f"{message}; got {value!r}")
        return value

    return check


#: A short free-form name that must not be empty: a GPU model, a certification.
NonEmptyName = Annotated[str, Field(min_length=1, max_length=MAX_SHORT_STRING)]

#: The name of another object (a module, a policy, a Secret): what the apiserver would accept.
ObjectName = Annotated[
    str,
    AfterValidator(_checker(is_object_name, OBJECT_NAME_MESSAGE)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [
                cel_rule(f"self.matches(r'{DNS_SUBDOMAIN_PATTERN}')", OBJECT_NAME_MESSAGE)
            ],
        }
    ),
]

#: A label key, e.g. aifactory.dev/module.
LabelKey = Annotated[
    str,
    AfterValidator(_checker(is_label_key, LABEL_KEY_MESSAGE)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LABEL_KEY_LENGTH,
            "x-kubernetes-validations": [cel_rule(_CEL_LABEL_KEY, LABEL_KEY_MESSAGE)],
        }
    ),
]

_LABEL_VALUE_RULES: JsonDict = {
    "x-kubernetes-validations": [
        cel_rule(f"self.matches(r'{LABEL_VALUE_PATTERN}')", LABEL_VALUE_MESSAGE)
    ],
}

#: A label value (may be empty, as in Kubernetes).
LabelValue = Annotated[
    str,
    AfterValidator(_checker(is_label_value, LABEL_VALUE_MESSAGE)),
    WithJsonSchema({"type": "string", "maxLength": MAX_LABEL_VALUE_LENGTH, **_LABEL_VALUE_RULES}),
]

#: A label value that must not be empty (a name the operator writes into a label).
NonEmptyLabelValue = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(_checker(is_label_value, LABEL_VALUE_MESSAGE)),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LABEL_VALUE_LENGTH,
            **_LABEL_VALUE_RULES,
        }
    ),
]


def _check_label_map(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels; got {len(labels)}")
    for key, value in labels.items():
        if not is_label_key(key):
            raise ValueError(f"{LABEL_MAP_KEYS_MESSAGE}; got {key!r}")
        if not is_label_value(value):
            raise ValueError(f"{LABEL_VALUE_MESSAGE}; got {value!r} for key {key!r}")
    return labels


#: Labels as a map (matchLabels, nodeSelector), at most MAX_LABELS entries. Use with
#: `json_schema_extra=LABEL_MAP_SCHEMA` on the Field: a map's keys can only be checked by a CEL
#: rule on the map itself, and the bound on entries keeps that rule's cost estimate small.
LabelMap = Annotated[dict[str, str], AfterValidator(_check_label_map)]
LABEL_MAP_SCHEMA: JsonDict = {
    "maxProperties": MAX_LABELS,
    "additionalProperties": {
        "type": "string",
        "maxLength": MAX_LABEL_VALUE_LENGTH,
        **_LABEL_VALUE_RULES,
    },
    "x-kubernetes-validations": [
        cel_rule(
            f"self.all(k, size(k) <= {MAX_LABEL_KEY_LENGTH} && "
            f"{_CEL_LABEL_KEY.replace('self', 'k')})",
            LABEL_MAP_KEYS_MESSAGE,
        )
    ],
}


def unique(values: Iterable[str], what: str) -> None:
    """Raise with the shared 'must be unique' wording when `values` repeats an entry."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} must be unique; {value!r} appears more than once")
        seen.add(value)


_T = TypeVar("_T")

#: A list whose items must be distinct, as Kubernetes declares them: the apiserver rejects a
#: repeated item itself ("Duplicate value"), in linear time and without CEL cost.
SET_LIST: JsonDict = {"x-kubernetes-list-type": "set"}


def no_duplicates(what: str) -> AfterValidator:
    """Pydantic side of SET_LIST: `what must be unique; 'H100' appears more than once`."""

    def check(values: list[_T]) -> list[_T]:
        unique((str(v) for v in values), what)
        return values

    return AfterValidator(check)


def unique_by_rule(key: str, what: str) -> JsonDict:
    """CEL rule: no two items of the list share `key`. Quadratic, so lists carry maxItems."""
    return cel_rule(
        f"self.all(a, self.exists_one(b, b.{key} == a.{key}))",
        f"{what} must be unique",
    )


# --------------------------------------------------------------------------------------------
# Enums shared by several resources


class EnergySourceType(StrEnum):
    """Where a module's electricity comes from; drives renewable share and source filters."""

    SOLAR = "solar"
    WIND = "wind"
    HYDRO = "hydro"
    GEOTHERMAL = "geothermal"
    NUCLEAR = "nuclear"
    GRID = "grid"
    GAS = "gas"
    DIESEL = "diesel"
    BATTERY = "battery"

    @property
    def renewable(self) -> bool:
        return self in RENEWABLE_SOURCES


#: Sources counted by the brief's renewable share (nuclear is low-carbon but not renewable).
RENEWABLE_SOURCES: frozenset[EnergySourceType] = frozenset(
    {
        EnergySourceType.SOLAR,
        EnergySourceType.WIND,
        EnergySourceType.HYDRO,
        EnergySourceType.GEOTHERMAL,
    }
)


class DataClassification(StrEnum):
    """Sensitivity of the data a deployment processes; sovereignty policies select on it."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


# --------------------------------------------------------------------------------------------
# Object metadata


class ObjectMeta(BaseModel):
    """The slice of Kubernetes object metadata the operator reads; everything else is kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = Field(description="Object name, unique per kind (and namespace when namespaced).")
    namespace: str | None = Field(default=None, description="Namespace of namespaced objects.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    deletion_timestamp: datetime | None = None
    finalizers: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Conditions


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """A Kubernetes-convention condition, so `kubectl wait --for=condition=...` works."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Condition type in CamelCase, e.g. Ready, Placed, Compliant.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="Unknown",
        max_length=1024,
        min_length=1,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details of the last transition."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed (not when it was last checked)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this condition was computed from."
    )

    @property
    def is_true(self) -> bool:
        return self.status is ConditionStatus.TRUE


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of that type, or None."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition], new: Condition, *, now: datetime | None = None
) -> list[Condition]:
    """Conditions with `new` replacing its type; the transition time moves only on a change.

    Keeping lastTransitionTime when the status is unchanged is what makes it useful ("Ready
    since"), and it keeps status patches quiet when nothing happened.
    """
    now = now or datetime.now(UTC)
    old = find_condition(conditions, new.type)
    if old is not None and old.status == new.status:
        stamp = old.last_transition_time or new.last_transition_time or now
    else:
        stamp = new.last_transition_time or now
    updated = new.model_copy(update={"last_transition_time": stamp})
    out = [c for c in conditions if c.type != new.type]
    out.append(updated)
    return out


#: Conditions as a list-map keyed by type, as metav1.Condition lists are.
CONDITIONS_SCHEMA_EXTRA: JsonDict = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


# --------------------------------------------------------------------------------------------
# Label selectors


class LabelSelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


SELECTOR_VALUES_MESSAGE = (
    "matchExpressions values must be non-empty for In and NotIn "
    "and empty for Exists and DoesNotExist"
)


class LabelSelectorRequirement(ApiModel):
    """One set-based requirement, with the same meaning as in Kubernetes label selectors."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "(self.operator in ['In', 'NotIn']) == "
                    "(has(self.values) && size(self.values) > 0)",
                    SELECTOR_VALUES_MESSAGE,
                )
            ]
        }
    )

    key: LabelKey = Field(description="Label key the requirement applies to.")
    operator: LabelSelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> Self:
        needs_values = self.operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN)
        if needs_values != bool(self.values):
            raise ValueError(SELECTOR_VALUES_MESSAGE)
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case LabelSelectorOperator.IN:
                return present and labels[self.key] in self.values
            case LabelSelectorOperator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case LabelSelectorOperator.EXISTS:
                return present
            case LabelSelectorOperator.DOES_NOT_EXIST:
                return not present
        raise AssertionError(self.operator)  # pragma: no cover - exhaustive


class LabelSelector(ApiModel):
    """A Kubernetes label selector. Empty selects everything, as in Kubernetes."""

    match_labels: LabelMap = Field(
        default_factory=dict,
        description="Labels that must all be present with these values.",
        json_schema_extra=LABEL_MAP_SCHEMA,
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Set-based requirements; all must hold.",
    )

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """True when `labels` satisfy every matchLabels entry and every matchExpression."""
        labels = labels or {}
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        return all(req.matches(labels) for req in self.match_expressions)

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


# --------------------------------------------------------------------------------------------
# Top-level resources


def _plain(value: Any) -> Any:
    """Plain dicts and lists from any Mapping/Sequence views (kopf bodies are read-only views)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Resource(BaseModel):
    """Common shape of the three top-level kinds: apiVersion, kind, metadata, spec, status.

    Subclasses set the ClassVars the CRD generator reads, so the names a CRD registers live
    next to the model they describe.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    NAMESPACED: ClassVar[bool]

    api_version: Literal["aifactory.dev/v1alpha1"] = Field(
        default="aifactory.dev/v1alpha1", alias="apiVersion"
    )
    metadata: ObjectMeta

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Self:
        """Parse and validate a manifest dict (from YAML, the API or a kopf body)."""
        return cls.model_validate(_plain(manifest))

    def to_manifest(self) -> dict[str, Any]:
        """A JSON-ready manifest with camelCase keys and unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def name(self) -> str:
        return self.metadata.name
