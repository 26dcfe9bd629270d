"""WattTime API v3: the marginal operating emissions rate (MOER) of a grid region.

Two requests (docs.watttime.org; WattTime's own client, github.com/WattTime/watttime-python-client):

1. `GET /login` with HTTP Basic auth (username, password) answers `{"token": "<JWT>"}`, valid
   for 30 minutes;
2. `GET /v3/forecast?region=CAISO_NORTH&signal_type=co2_moer` with `Authorization: Bearer
   <JWT>` answers

       {"data": [{"point_time": "2024-06-21T12:00:00+00:00", "value": 870.0}, ...],
        "meta": {"region": "CAISO_NORTH", "signal_type": "co2_moer",
                 "units": "lbs_co2_per_mwh", "generated_at": "...",
                 "data_point_period_seconds": 300, "model": {"date": "..."}, "warnings": []}}

   whose first point is WattTime's estimate for the current five-minute period.

The value is in lbs CO2/MWh and becomes gCO2/kWh (x 0.45359237). A MOER is the emission rate
of the generators that answer a change in load: marginal, from combustion (direct) factors,
never comparable with an average intensity.
"""

from __future__ import annotations

import base64
import urllib.parse
from datetime import datetime, timedelta

from aifactory.api.carbon_signal import CarbonSignalProvider, EmissionFactorType, SignalType
from aifactory.signals.carbon.http import HttpRequest
from aifactory.signals.carbon.reading import (
    G_PER_KWH_PER_LB_PER_MWH,
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

PROVIDER = CarbonSignalProvider.WATTTIME
DEFAULT_URL = "https://api.watttime.org"
LOGIN_PATH = "/login"
FORECAST_PATH = "/v3/forecast"
SIGNAL = "co2_moer"
UNITS = "lbs_co2_per_mwh"
#: Tokens live 30 minutes; renew a little before.
TOKEN_LIFETIME = timedelta(minutes=25)


def login_request(
    username: str, password: str, *, url: str | None = None, timeout: float = 10.0
) -> HttpRequest:
    """GET /login with HTTP Basic credentials (in a header, never in the URL)."""
    basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return HttpRequest(
        url=f"{(url or DEFAULT_URL).rstrip('/')}{LOGIN_PATH}",
        headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        timeout=timeout,
    )


def parse_login(body: bytes | str) -> str:
    """The token of a /login answer; Malformed (without echoing the body) otherwise."""
    doc = load_json(body, PROVIDER)
    token = doc.get("token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise malformed(PROVIDER, "the /login answer has no token")
    return token


def request(
    region: str, token: str, *, url: str | None = None, timeout: float = 10.0
) -> HttpRequest:
    """GET /v3/forecast for the region's co2_moer."""
    query = urllib.parse.urlencode({"region": region, "signal_type": SIGNAL})
    return HttpRequest(
        url=f"{(url or DEFAULT_URL).rstrip('/')}{FORECAST_PATH}?{query}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=timeout,
    )


def parse(
    body: bytes | str,
    *,
    now: datetime,
    region: str | None = None,
    max_age: timedelta | None = None,
) -> CarbonReading:
    """A reading from a /v3/forecast answer: the first data point, converted to gCO2/kWh.

    Raises CarbonSignalError: Malformed, UnitMismatch (units other than lbs_co2_per_mwh, or a
    signal other than co2_moer such as health_damage), ZoneMismatch (meta.region is not
    `region`), NoData (empty data), Stale (first point older than `max_age`).
    """
    now = check_now(now)
    doc = load_json(body, PROVIDER)
    meta = field(doc, "meta", PROVIDER)
    units = field(meta, "units", PROVIDER)
    signal = meta.get("signal_type")
    if units != UNITS:
        raise CarbonSignalError(
            REASON_UNIT_MISMATCH,
            f"values are in {str(units)[:40]!r}, expected {UNITS}",
            provider=PROVIDER.value,
        )
    if signal is not None and signal != SIGNAL:
        raise CarbonSignalError(
            REASON_UNIT_MISMATCH,
            f"signal_type is {str(signal)[:40]!r}, expected {SIGNAL} (lbs CO2/MWh)",
            provider=PROVIDER.value,
        )
    answered = meta.get("region")
    if region is not None and answered is not None and answered != region:
        raise CarbonSignalError(
            REASON_ZONE_MISMATCH,
            f"asked for region {region}, WattTime answered for {str(answered)[:40]}",
            provider=PROVIDER.value,
        )
    data = field(doc, "data", PROVIDER)
    if not isinstance(data, list):
        raise malformed(PROVIDER, "data must be a list of points")
    if not data:
        raise CarbonSignalError(
            REASON_NO_DATA, f"no data points for {answered or region}", provider=PROVIDER.value
        )
    first = data[0]
    lbs = intensity(field(first, "value", PROVIDER), "data[0].value", PROVIDER)
    generated = meta.get("generated_at")
    reading = CarbonReading(
        carbon_intensity=lbs * G_PER_KWH_PER_LB_PER_MWH,
        signal_type=SignalType.MARGINAL,
        emission_factor_type=EmissionFactorType.DIRECT,
        data_time=timestamp(field(first, "point_time", PROVIDER), "data[0].point_time", PROVIDER),
        read_at=now,
        # WattTime calls the first forecast point an estimate of the current period.
        estimated=True,
        zone=str(answered or region or ""),
        provider=PROVIDER,
        updated_at=None if generated is None else timestamp(generated, "generated_at", PROVIDER),
    )
    return check_fresh(reading, now, max_age)


__all__ = [
    "DEFAULT_URL",
    "FORECAST_PATH",
    "LOGIN_PATH",
    "PROVIDER",
    "TOKEN_LIFETIME",
    "login_request",
    "parse",
    "parse_login",
    "request",
]
