"""GB National Grid ESO (now NESO) Carbon Intensity API: `GET /intensity`.

Documented answer (carbon-intensity.github.io/api-definitions, licence CC BY 4.0):

    {"data": [{"from": "2018-01-20T12:00Z", "to": "2018-01-20T12:30Z",
               "intensity": {"forecast": 266, "actual": 263, "index": "moderate"}}]}

for the half hour that contains now. Values are in gCO2/kWh: the average intensity of the
electricity consumed in Great Britain, from fuel-specific factors of combustion only (nuclear,
wind and solar count 0), i.e. direct factors. `actual` is null until the half hour has closed;
the forecast is used then and the reading is marked estimated. Errors come as
`{"error": {"code": "400 Bad Request", "message": "..."}}`. No credentials.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aifactory.api.carbon_signal import (
    NATIONAL_GRID_ESO_ZONE,
    CarbonSignalProvider,
    EmissionFactorType,
    SignalType,
)
from aifactory.signals.carbon.http import HttpRequest
from aifactory.signals.carbon.reading import (
    REASON_NO_DATA,
    REASON_PROVIDER_ERROR,
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

PROVIDER = CarbonSignalProvider.NATIONAL_GRID_ESO
DEFAULT_URL = "https://api.carbonintensity.org.uk"
PATH = "/intensity"


def request(*, url: str | None = None, timeout: float = 10.0) -> HttpRequest:
    """GET /intensity: the current half hour, national."""
    return HttpRequest(
        url=f"{(url or DEFAULT_URL).rstrip('/')}{PATH}",
        headers={"Accept": "application/json"},
        timeout=timeout,
    )


def parse(body: bytes | str, *, now: datetime, max_age: timedelta | None = None) -> CarbonReading:
    """A reading from an /intensity answer: the period containing `now`, else the latest
    period that started before it; `actual` when published, else `forecast` (estimated).

    Raises CarbonSignalError: ProviderError (an `error` object), Malformed, NoData (no
    period, or none started yet), Stale (older than `max_age`).
    """
    now = check_now(now)
    doc = load_json(body, PROVIDER)
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        raise CarbonSignalError(
            REASON_PROVIDER_ERROR,
            f"{str(err.get('code', ''))[:40]}: {str(err.get('message', ''))[:200]}",
            provider=PROVIDER.value,
        )
    data = field(doc, "data", PROVIDER)
    if not isinstance(data, list):
        raise malformed(PROVIDER, "data must be a list of half-hour periods")
    periods: list[tuple[datetime, datetime, dict[str, object]]] = []
    for i, item in enumerate(data):
        start = timestamp(field(item, "from", PROVIDER), f"data[{i}].from", PROVIDER)
        end = timestamp(field(item, "to", PROVIDER), f"data[{i}].to", PROVIDER)
        values = field(item, "intensity", PROVIDER)
        if not isinstance(values, dict):
            raise malformed(PROVIDER, f"data[{i}].intensity must be an object")
        periods.append((start, end, values))
    started = [p for p in periods if p[0] <= now]
    if not started:
        raise CarbonSignalError(
            REASON_NO_DATA, "no half-hour period has started yet", provider=PROVIDER.value
        )
    current = [p for p in started if now < p[1]]
    start, _end, values = (current or sorted(started, key=lambda p: p[0]))[-1]
    actual = values.get("actual")
    estimated = actual is None
    raw = values.get("forecast") if estimated else actual
    if raw is None:
        raise CarbonSignalError(
            REASON_NO_DATA,
            f"neither actual nor forecast for {start.isoformat()}",
            provider=PROVIDER.value,
        )
    what = "intensity.forecast" if estimated else "intensity.actual"
    reading = CarbonReading(
        carbon_intensity=intensity(raw, what, PROVIDER),
        signal_type=SignalType.AVERAGE,
        emission_factor_type=EmissionFactorType.DIRECT,
        data_time=start,
        read_at=now,
        estimated=estimated,
        zone=NATIONAL_GRID_ESO_ZONE,
        provider=PROVIDER,
    )
    return check_fresh(reading, now, max_age)


__all__ = ["DEFAULT_URL", "PATH", "PROVIDER", "parse", "request"]
