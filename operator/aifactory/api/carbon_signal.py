"""`AIFactoryModule.spec.energy.signal`: the live carbon-intensity feed of a module.

A module names one provider and the grid zone it sits in; the operator reads the feed and
writes the reading to `status.energy` with the signal's method (average or marginal,
lifecycle or direct), so readings of different methods are never compared in one decision.
Credentials are only ever referenced by Secret, never written in the object.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from aifactory.api.common import MAX_NAME_LENGTH, MAX_SHORT_STRING, ApiModel, cel_rule


class CarbonSignalProvider(StrEnum):
    """Where a module's live carbon intensity comes from."""

    ELECTRICITY_MAPS = "ElectricityMaps"
    WATTTIME = "WattTime"
    NATIONAL_GRID_ESO = "NationalGridESO"
    CSV = "CSV"


class SignalType(StrEnum):
    """Average intensity of the electricity consumed, or the marginal rate of the generator
    that answers a change in load (WattTime's MOER). Never compared with each other."""

    AVERAGE = "average"
    MARGINAL = "marginal"


class EmissionFactorType(StrEnum):
    """Lifecycle (LCA: construction, fuel chain, operation) or direct (combustion only)
    emission factors, as Electricity Maps names them."""

    LIFECYCLE = "lifecycle"
    DIRECT = "direct"


class CsvReplay(StrEnum):
    """How a CSV time series maps onto the clock."""

    #: Rows are read at their own timestamps.
    NONE = "None"
    #: The series' year is replayed onto the current year (month, day and hour kept; 29
    #: February reads 28 February), for demos with a past year of data.
    YEAR = "Year"


#: Providers whose requests carry credentials, and providers whose method is fixed.
CREDENTIAL_PROVIDERS = (CarbonSignalProvider.ELECTRICITY_MAPS, CarbonSignalProvider.WATTTIME)
FACTOR_TYPE_PROVIDERS = (CarbonSignalProvider.ELECTRICITY_MAPS, CarbonSignalProvider.CSV)
#: The only zone of the national /intensity endpoint of the GB Carbon Intensity API.
NATIONAL_GRID_ESO_ZONE = "GB"

SIGNAL_CSV_MESSAGE = "energy.signal.csv must be set when provider is CSV, and only then"
SIGNAL_CREDENTIALS_MESSAGE = (
    "energy.signal.credentialsSecretRef must be set for ElectricityMaps and WattTime, "
    "and only for them"
)
SIGNAL_FACTOR_TYPE_MESSAGE = (
    "energy.signal.emissionFactorType applies to ElectricityMaps and CSV only "
    "(WattTime and NationalGridESO publish direct emissions)"
)
SIGNAL_GB_MESSAGE = "energy.signal.zone must be GB for NationalGridESO"
SIGNAL_URL_MESSAGE = (
    "energy.signal.url must start with http:// or https:// and does not apply to CSV"
)
CSV_SOURCE_MESSAGE = "energy.signal.csv must set exactly one of configMapKeyRef or path"
CSV_PATH_MESSAGE = "energy.signal.csv.path must be an absolute path"


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{SIGNAL_URL_MESSAGE}; got {url!r}")
    return url


def _check_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{CSV_PATH_MESSAGE}; got {path!r}")
    return path


def _cel_list(values: tuple[StrEnum, ...]) -> str:
    return "[" + ",".join(f"'{v.value}'" for v in values) + "]"


class SecretRef(ApiModel):
    """A Secret holding a feed's credentials; which keys it needs depends on the provider."""

    namespace: str = Field(
        min_length=1, max_length=MAX_SHORT_STRING, description="Namespace of the Secret."
    )
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Name of the Secret.")


class ConfigMapKeyRef(ApiModel):
    """One key of a ConfigMap."""

    namespace: str = Field(
        min_length=1, max_length=MAX_SHORT_STRING, description="Namespace of the ConfigMap."
    )
    name: str = Field(
        min_length=1, max_length=MAX_NAME_LENGTH, description="Name of the ConfigMap."
    )
    key: str = Field(
        min_length=1, max_length=MAX_NAME_LENGTH, description="Key holding the CSV text."
    )


class CsvSignalSource(ApiModel):
    """An hourly (or finer) carbon-intensity series: a `datetime` first column (ISO 8601, UTC
    when it has no offset) and one column of gCO2e/kWh per zone, e.g. an Electricity Maps
    export. The row for now is the last one at or before now."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("has(self.configMapKeyRef) != has(self.path)", CSV_SOURCE_MESSAGE)
            ]
        }
    )

    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="ConfigMap key holding the CSV (at most about 1 MiB)."
    )
    path: Annotated[str, AfterValidator(_check_path)] | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Absolute path of the CSV in the operator's file system (a mounted volume).",
        json_schema_extra={
            "x-kubernetes-validations": [cel_rule("self.startsWith('/')", CSV_PATH_MESSAGE)]
        },
    )
    replay: CsvReplay = Field(
        default=CsvReplay.NONE,
        description="None reads rows at their timestamps; Year replays the series' year onto "
        "the current one (for demos with a past year of data).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.config_map_key_ref is None) == (self.path is None):
            raise ValueError(CSV_SOURCE_MESSAGE)
        return self


class CarbonSignal(ApiModel):
    """A live carbon-intensity feed; its readings override spec.energy.carbonIntensity in
    status while they are fresh and of the fleet's signal method."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("(self.provider == 'CSV') == has(self.csv)", SIGNAL_CSV_MESSAGE),
                cel_rule(
                    f"has(self.credentialsSecretRef) == "
                    f"(self.provider in {_cel_list(CREDENTIAL_PROVIDERS)})",
                    SIGNAL_CREDENTIALS_MESSAGE,
                ),
                cel_rule(
                    f"!has(self.emissionFactorType) || "
                    f"self.provider in {_cel_list(FACTOR_TYPE_PROVIDERS)}",
                    SIGNAL_FACTOR_TYPE_MESSAGE,
                ),
                cel_rule(
                    f"self.provider != 'NationalGridESO' || "
                    f"self.zone == '{NATIONAL_GRID_ESO_ZONE}'",
                    SIGNAL_GB_MESSAGE,
                ),
                cel_rule("self.provider != 'CSV' || !has(self.url)", SIGNAL_URL_MESSAGE),
            ]
        }
    )

    provider: CarbonSignalProvider = Field(
        description="ElectricityMaps (v3 carbon-intensity/latest), WattTime (v3 forecast, "
        "co2_moer), NationalGridESO (api.carbonintensity.org.uk /intensity) or CSV."
    )
    zone: str = Field(
        min_length=1,
        max_length=MAX_SHORT_STRING,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The provider's grid zone: an Electricity Maps zone (DE, US-CAL-CISO), a "
        "WattTime region (CAISO_NORTH), GB for NationalGridESO, or the CSV column.",
    )
    url: Annotated[str, AfterValidator(_check_url)] | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Base URL replacing the provider's public one (a proxy or a mirror); the "
        "endpoint path is appended.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.startsWith('http://') || self.startsWith('https://')",
                    SIGNAL_URL_MESSAGE,
                )
            ]
        },
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with the feed's credentials: key `token` for ElectricityMaps, keys "
        "`username` and `password` for WattTime. Never copied into status, events or logs.",
    )
    emission_factor_type: EmissionFactorType | None = Field(
        default=None,
        description="ElectricityMaps: the factors to request (default lifecycle). CSV: the "
        "factors the series uses (default lifecycle). WattTime and NationalGridESO publish "
        "direct emissions and refuse this field.",
    )
    csv: CsvSignalSource | None = Field(
        default=None, description="The series to read; required for provider CSV only."
    )
    timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="HTTP timeout of one request in seconds."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        p = self.provider
        if (p is CarbonSignalProvider.CSV) != (self.csv is not None):
            raise ValueError(SIGNAL_CSV_MESSAGE)
        if (self.credentials_secret_ref is not None) != (p in CREDENTIAL_PROVIDERS):
            raise ValueError(SIGNAL_CREDENTIALS_MESSAGE)
        if self.emission_factor_type is not None and p not in FACTOR_TYPE_PROVIDERS:
            raise ValueError(SIGNAL_FACTOR_TYPE_MESSAGE)
        if p is CarbonSignalProvider.NATIONAL_GRID_ESO and self.zone != NATIONAL_GRID_ESO_ZONE:
            raise ValueError(SIGNAL_GB_MESSAGE)
        if p is CarbonSignalProvider.CSV and self.url is not None:
            raise ValueError(SIGNAL_URL_MESSAGE)
        return self


__all__ = [
    "CREDENTIAL_PROVIDERS",
    "FACTOR_TYPE_PROVIDERS",
    "NATIONAL_GRID_ESO_ZONE",
    "CarbonSignal",
    "CarbonSignalProvider",
    "ConfigMapKeyRef",
    "CsvReplay",
    "CsvSignalSource",
    "EmissionFactorType",
    "SecretRef",
    "SignalType",
]
