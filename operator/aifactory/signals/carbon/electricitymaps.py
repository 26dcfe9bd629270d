"""Electricity Maps API v3: `GET /v3/carbon-intensity/latest?zone=DE`.

Documented answer (portal.electricitymaps.com/developer-hub/api/reference):

    {"zone": "DE", "carbonIntensity": 302, "datetime": "2019-05-21T00:00:00.000Z",
     "updatedAt": "2019-05-21T00:06:49.466Z", "createdAt": "...",
     "emissionFactorType": "lifecycle", "isEstimated": true,
     "estimationMethod": "TIME_SLICER_AVERAGE"}

`carbonIntensity` is the average intensity of the electricity consumed in the zone
(flow-traced), in gCO2eq/kWh, with lifecycle (default) or direct emission factors as
requested with `emissionFactorType`. The token travels in the `auth-token` header, never in
the URL. When a zone is unknown the API may answer for the caller's IP location instead, so the
zone of the answer is checked.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from aifactory.api.carbon_signal import CarbonSignalProvider, EmissionFactorType, SignalType
from aifactory.signals.carbon.http import HttpRequest
from aifactory.signals.carbon.reading import (
    REASON_METHOD_MISMATCH,
    REASON_NO_DATA,
    REASON_UNIT_MISMATCH,
    REASON_ZONE_MISMATCH,
    CarbonReading,
    CarbonSignalError,
    check_fresh,
    check_now,
    field,
    intensity,
    load_json,
    malformed,
    timestamp,
)

PROVIDER = CarbonSignalProvider.ELECTRICITY_MAPS
DEFAULT_URL = "https://api.electricitymaps.com"
PATH = "/v3/carbon-intensity/latest"
TOKEN_HEADER = "auth-token"
#: Units the adapter accepts if an answer states one (the /latest answer documents none).
UNITS = frozenset({"gCO2eq/kWh", "gCO2e/kWh"})


def request(
    zone: str,
    token: str,
    *,
    emission_factor_type: EmissionFactorType = EmissionFactorType.LIFECYCLE,
    url: str | None = None,
    timeout: float = 10.0,
) -> HttpRequest:
    """The HTTP request for the latest value of `zone`."""
    query = urllib.parse.urlencode({"zone": zone, "emissionFactorType": emission_factor_type})
    return HttpRequest(
        url=f"{(url or DEFAULT_URL).rstrip('/')}{PATH}?{query}",
        headers={TOKEN_HEADER: token, "Accept": "application/json"},
        timeout=timeout,
    )


def parse(
    body: bytes | str,
    *,
    now: datetime,
    zone: str | None = None,
    emission_factor_type: EmissionFactorType | None = None,
    max_age: timedelta | None = None,
) -> CarbonReading:
    """A reading from a /v3/carbon-intensity/latest answer.

    `zone` and `emission_factor_type`, when given, are what was asked for: an answer for
    another zone is ZoneMismatch, other factors MethodMismatch. Without emissionFactorType in
    the answer, the requested type (else Electricity Maps' default, lifecycle) is assumed.
    Raises CarbonSignalError: Malformed, NoData (carbonIntensity null), UnitMismatch (a stated
    unit other than gCO2eq/kWh), ZoneMismatch, MethodMismatch, Stale (older than `max_age`).
    """
    now = check_now(now)
    doc = load_json(body, PROVIDER)
    _check_unit(doc)
    answered_zone = field(doc, "zone", PROVIDER)
    if not isinstance(answered_zone, str) or not answered_zone:
        raise malformed(PROVIDER, "zone must be a non-empty string")
    if zone is not None and answered_zone != zone:
        raise CarbonSignalError(
            REASON_ZONE_MISMATCH,
            f"asked for zone {zone}, Electricity Maps answered for {answered_zone}",
            provider=PROVIDER.value,
        )
    raw = field(doc, "carbonIntensity", PROVIDER)
    if raw is None:
        raise CarbonSignalError(
            REASON_NO_DATA, f"no carbon intensity for {answered_zone} yet", provider=PROVIDER.value
        )
    value = intensity(raw, "carbonIntensity", PROVIDER)
    data_time = timestamp(field(doc, "datetime", PROVIDER), "datetime", PROVIDER)
    updated = doc.get("updatedAt")
    factors = _factor_type(doc.get("emissionFactorType"), emission_factor_type)
    estimated = doc.get("isEstimated", False)
    if not isinstance(estimated, bool):
        raise malformed(PROVIDER, "isEstimated must be true or false")
    reading = CarbonReading(
        carbon_intensity=value,
        signal_type=SignalType.AVERAGE,
        emission_factor_type=factors,
        data_time=data_time,
        read_at=now,
        estimated=estimated,
        zone=answered_zone,
        provider=PROVIDER,
        updated_at=None if updated is None else timestamp(updated, "updatedAt", PROVIDER),
    )
    return check_fresh(reading, now, max_age)


def _check_unit(doc: Any) -> None:
    unit = None
    if isinstance(doc, dict):
        unit = doc.get("unit")
        units = doc.get("units")
        if unit is None and isinstance(units, dict):
            unit = units.get("carbonIntensity")
    if unit is not None and unit not in UNITS:
        raise CarbonSignalError(
            REASON_UNIT_MISMATCH,
            f"carbonIntensity is in {str(unit)[:40]!r}, expected gCO2eq/kWh",
            provider=PROVIDER.value,
        )


def _factor_type(value: Any, asked: EmissionFactorType | None) -> EmissionFactorType:
    if value is None:
        return asked or EmissionFactorType.LIFECYCLE
    try:
        got = EmissionFactorType(value)
    except ValueError:
        raise malformed(
            PROVIDER, f"emissionFactorType must be lifecycle or direct, got {str(value)[:40]!r}"
        ) from None
    if asked is not None and got != asked:
        raise CarbonSignalError(
            REASON_METHOD_MISMATCH,
            f"asked for {EmissionFactorType(asked).value} emission factors, got {got.value}",
            provider=PROVIDER.value,
        )
    return got


__all__ = ["DEFAULT_URL", "PATH", "PROVIDER", "TOKEN_HEADER", "parse", "request"]
