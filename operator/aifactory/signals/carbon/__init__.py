"""Live carbon intensity from public feeds: adapters, a fetch layer and the rules for using them.

One module per provider turns its raw answer (text or bytes) and the time of reading into a
`CarbonReading` in gCO2e/kWh with its method, or raises `CarbonSignalError` with a CamelCase
reason: `electricitymaps` (v3 carbon-intensity/latest), `watttime` (v3 forecast, co2_moer),
`ngeso` (GB Carbon Intensity API /intensity) and `csv_series` (an hourly series by zone).
`fetch.fetch_reading` polls a module's `spec.energy.signal` through an injected HTTP getter;
`policy` keeps the last good reading, falls back to the declared value when it is stale or of
another method, and reports a fleet whose feeds mix methods.
"""

from aifactory.signals.carbon import csv_series, electricitymaps, ngeso, watttime
from aifactory.signals.carbon.fetch import Credentials, fetch_reading, read_csv_file, redact
from aifactory.signals.carbon.http import HttpGet, HttpRequest, HttpResponse, urllib_get
from aifactory.signals.carbon.policy import (
    CONDITION_ENERGY_SIGNAL,
    REASON_LAST_GOOD,
    REASON_MIXED_METHODS,
    REASON_NO_READING,
    REASON_SIGNAL_CURRENT,
    EffectiveEnergy,
    MethodMismatch,
    SignalState,
    effective_energy,
    method_mismatch,
    method_of,
    record,
)
from aifactory.signals.carbon.reading import (
    G_PER_KWH_PER_LB_PER_MWH,
    REASON_MALFORMED,
    REASON_METHOD_MISMATCH,
    REASON_MISSING_CREDENTIALS,
    REASON_NO_DATA,
    REASON_PROVIDER_ERROR,
    REASON_RATE_LIMITED,
    REASON_STALE,
    REASON_UNAUTHORIZED,
    REASON_UNIT_MISMATCH,
    REASON_UNREACHABLE,
    REASON_ZONE_MISMATCH,
    REASON_ZONE_NOT_FOUND,
    SOURCE_SIGNAL,
    CarbonReading,
    CarbonSignalError,
    SignalMethod,
)

__all__ = [
    "CONDITION_ENERGY_SIGNAL",
    "G_PER_KWH_PER_LB_PER_MWH",
    "REASON_LAST_GOOD",
    "REASON_MALFORMED",
    "REASON_METHOD_MISMATCH",
    "REASON_MISSING_CREDENTIALS",
    "REASON_MIXED_METHODS",
    "REASON_NO_DATA",
    "REASON_NO_READING",
    "REASON_PROVIDER_ERROR",
    "REASON_RATE_LIMITED",
    "REASON_SIGNAL_CURRENT",
    "REASON_STALE",
    "REASON_UNAUTHORIZED",
    "REASON_UNIT_MISMATCH",
    "REASON_UNREACHABLE",
    "REASON_ZONE_MISMATCH",
    "REASON_ZONE_NOT_FOUND",
    "SOURCE_SIGNAL",
    "CarbonReading",
    "CarbonSignalError",
    "Credentials",
    "EffectiveEnergy",
    "HttpGet",
    "HttpRequest",
    "HttpResponse",
    "MethodMismatch",
    "SignalMethod",
    "SignalState",
    "csv_series",
    "effective_energy",
    "electricitymaps",
    "fetch_reading",
    "method_mismatch",
    "method_of",
    "ngeso",
    "read_csv_file",
    "record",
    "redact",
    "urllib_get",
    "watttime",
]
