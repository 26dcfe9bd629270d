"""Read one module's feed: build the request, call the injected getter, parse the answer.

`fetch_reading(signal, now=..., http_get=..., credentials=...)` is everything the operator
needs to poll a `spec.energy.signal`; it performs no I/O itself (the getter does), so tests run
it on recorded answers. Errors come out as one family, `CarbonSignalError`, whatever happened:
transport (Unreachable), HTTP status (Unauthorized, ZoneNotFound, RateLimited, ProviderError)
or content (Malformed, UnitMismatch, Stale, ...). Every secret value (token, username,
password and the Basic-auth string made of them) is replaced by `***` in every message before
it leaves this module, and exceptions are raised without their cause, so neither a log line nor
a condition nor a traceback can carry a credential.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import urllib.parse
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aifactory.api.carbon_signal import (
    CarbonSignal,
    CarbonSignalProvider,
    CsvReplay,
    EmissionFactorType,
)
from aifactory.signals.carbon import csv_series, electricitymaps, ngeso, watttime
from aifactory.signals.carbon.http import MAX_BODY_BYTES, HttpGet, HttpRequest, HttpResponse
from aifactory.signals.carbon.reading import (
    REASON_MALFORMED,
    REASON_MISSING_CREDENTIALS,
    REASON_PROVIDER_ERROR,
    REASON_RATE_LIMITED,
    REASON_UNAUTHORIZED,
    REASON_UNREACHABLE,
    REASON_ZONE_NOT_FOUND,
    CarbonReading,
    CarbonSignalError,
    check_now,
)

#: Secret keys read per provider.
TOKEN_KEY = "token"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
REDACTED = "***"

#: (base URL, username) -> (WattTime token, valid until).
TokenCache = MutableMapping[tuple[str, str], tuple[str, datetime]]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a feed's Secret holds. Never printed: every field is left out of the repr."""

    token: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(
        cls, data: Mapping[str, str] | None, *, base64_encoded: bool = True
    ) -> Credentials:
        """From a Secret's `data` (base64, as the API returns it) or `stringData`
        (`base64_encoded=False`). Keys: token; username and password. Surrounding
        whitespace (a trailing newline from `kubectl create secret --from-file`) is dropped.
        Undecodable values raise CarbonSignalError(MissingCredentials) naming only the key.
        """

        def value(key: str) -> str | None:
            raw = (data or {}).get(key)
            if raw is None:
                return None
            if base64_encoded:
                try:
                    raw = base64.b64decode(raw, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise CarbonSignalError(
                        REASON_MISSING_CREDENTIALS, f"Secret key {key} is not valid base64 text"
                    ) from None
            return raw.strip() or None

        return cls(value(TOKEN_KEY), value(USERNAME_KEY), value(PASSWORD_KEY))

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never appear in a message, incl. the Basic-auth string."""
        out = [v for v in (self.token, self.username, self.password) if v]
        if self.username and self.password:
            out.append(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())
        return tuple(sorted(out, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret value replaced by ***."""
    for s in secrets:
        if s:
            text = text.replace(s, REDACTED)
    return text


def fetch_reading(
    signal: CarbonSignal,
    *,
    now: datetime,
    http_get: HttpGet,
    credentials: Credentials | None = None,
    csv_text: str | None = None,
    max_age: timedelta | None = None,
    default_emission_factor_type: EmissionFactorType | str = EmissionFactorType.LIFECYCLE,
    token_cache: TokenCache | None = None,
) -> CarbonReading:
    """The current reading of one `spec.energy.signal`.

    `credentials` come from the Secret of `credentialsSecretRef` (ElectricityMaps, WattTime);
    `csv_text` is the series of a CSV signal, read by the caller from its ConfigMap key or
    file (`read_csv_file`). `default_emission_factor_type` ("lifecycle" or "direct") is
    requested from Electricity Maps when the signal does not say (pass the fleet's basis).
    `token_cache` keeps WattTime tokens between polls (they live 30 minutes; /login is
    rate-limited). Readings older than `max_age` raise Stale. Raises CarbonSignalError only;
    ValueError for a naive `now` or a CSV signal without `csv_text` (caller bugs).
    """
    now = check_now(now)
    creds = credentials or Credentials()
    try:
        return _fetch(
            signal,
            now=now,
            http_get=http_get,
            creds=creds,
            csv_text=csv_text,
            max_age=max_age,
            default_factors=EmissionFactorType(default_emission_factor_type),
            token_cache=token_cache,
        )
    except CarbonSignalError as err:
        secrets = creds.secrets()
        raise CarbonSignalError(
            err.reason, redact(err.message, secrets), provider=signal.provider.value
        ) from None


def _fetch(
    signal: CarbonSignal,
    *,
    now: datetime,
    http_get: HttpGet,
    creds: Credentials,
    csv_text: str | None,
    max_age: timedelta | None,
    default_factors: EmissionFactorType,
    token_cache: TokenCache | None,
) -> CarbonReading:
    p = signal.provider
    timeout = signal.timeout_seconds
    if p is CarbonSignalProvider.CSV:
        if csv_text is None:
            raise ValueError("a CSV signal needs csv_text (read its ConfigMap key or file)")
        csv = signal.csv
        replay = csv.replay if csv is not None else CsvReplay.NONE
        return csv_series.parse(
            csv_text,
            zone=signal.zone,
            now=now,
            replay=replay,
            emission_factor_type=signal.emission_factor_type or EmissionFactorType.LIFECYCLE,
            max_age=max_age,
        )
    if p is CarbonSignalProvider.NATIONAL_GRID_ESO:
        body = _get(http_get, ngeso.request(url=signal.url, timeout=timeout), signal)
        return ngeso.parse(body, now=now, max_age=max_age)
    if p is CarbonSignalProvider.ELECTRICITY_MAPS:
        if not creds.token:
            raise _missing(signal, TOKEN_KEY)
        factors = signal.emission_factor_type or default_factors
        req = electricitymaps.request(
            signal.zone, creds.token, emission_factor_type=factors, url=signal.url, timeout=timeout
        )
        body = _get(http_get, req, signal)
        return electricitymaps.parse(
            body, now=now, zone=signal.zone, emission_factor_type=factors, max_age=max_age
        )
    # WattTime
    if not creds.username or not creds.password:
        raise _missing(signal, f"{USERNAME_KEY} and {PASSWORD_KEY}")
    key = ((signal.url or watttime.DEFAULT_URL).rstrip("/"), creds.username)
    cached = token_cache.get(key) if token_cache is not None else None
    token = cached[0] if cached is not None and cached[1] > now else None
    for attempt in range(2):
        if token is None:
            login = watttime.login_request(
                creds.username, creds.password, url=signal.url, timeout=timeout
            )
            token = watttime.parse_login(_get(http_get, login, signal))
            if token_cache is not None:
                token_cache[key] = (token, now + watttime.TOKEN_LIFETIME)
            fresh = True
        else:
            fresh = False
        req = watttime.request(signal.zone, token, url=signal.url, timeout=timeout)
        try:
            body = _get(http_get, req, signal)
        except CarbonSignalError as err:
            # A cached token the API no longer accepts: log in again, once.
            if err.reason == REASON_UNAUTHORIZED and not fresh and attempt == 0:
                if token_cache is not None:
                    token_cache.pop(key, None)
                token = None
                continue
            raise
        return watttime.parse(body, now=now, region=signal.zone, max_age=max_age)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _missing(signal: CarbonSignal, keys: str) -> CarbonSignalError:
    ref = signal.credentials_secret_ref
    where = f"Secret {ref.namespace}/{ref.name}" if ref is not None else "no Secret"
    return CarbonSignalError(
        REASON_MISSING_CREDENTIALS,
        f"{signal.provider.value} needs {keys} in {where}",
        provider=signal.provider.value,
    )


def _get(http_get: HttpGet, request: HttpRequest, signal: CarbonSignal) -> bytes:
    """The body of a 2xx answer; every other outcome as a CarbonSignalError."""
    parts = urllib.parse.urlsplit(request.url)  # hostname only: never a URL's user:password@
    host = f"{parts.hostname}{f':{parts.port}' if parts.port else ''}" if parts.hostname else "?"
    name = signal.provider.value
    try:
        response: HttpResponse = http_get(request)
    except OSError as err:  # incl. TimeoutError and urllib.error.URLError
        raise CarbonSignalError(
            REASON_UNREACHABLE, f"cannot reach {name} at {host}: {type(err).__name__}"
        ) from None
    except ValueError:
        raise CarbonSignalError(REASON_PROVIDER_ERROR, f"invalid {name} URL: {host}") from None
    status = response.status
    if len(response.body) > MAX_BODY_BYTES:
        raise CarbonSignalError(REASON_MALFORMED, f"{name} answer larger than {MAX_BODY_BYTES} B")
    if 200 <= status < 300:
        return response.body
    if status in (401, 403):
        ref = signal.credentials_secret_ref
        where = f" from Secret {ref.namespace}/{ref.name}" if ref is not None else ""
        raise CarbonSignalError(
            REASON_UNAUTHORIZED, f"{name} refused the credentials{where} (HTTP {status})"
        )
    if status == 404:
        raise CarbonSignalError(
            REASON_ZONE_NOT_FOUND, f"{name} knows no zone {signal.zone} (HTTP 404)"
        )
    if status == 429:
        raise CarbonSignalError(REASON_RATE_LIMITED, f"{name} rate limit reached (HTTP 429)")
    if status in (502, 503, 504):
        raise CarbonSignalError(REASON_UNREACHABLE, f"{name} at {host} unavailable (HTTP {status})")
    snippet = response.body[:200].decode("utf-8", "replace").strip()
    raise CarbonSignalError(REASON_PROVIDER_ERROR, f"{name} answered HTTP {status}: {snippet}")


def read_csv_file(path: str | Path) -> str:
    """The text of a CSV series file (`.gz` is decompressed); Unreachable when unreadable."""
    p = Path(path)
    try:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise CarbonSignalError(
            REASON_UNREACHABLE,
            f"cannot read {p}: {getattr(err, 'strerror', None) or type(err).__name__}",
            provider=CarbonSignalProvider.CSV.value,
        ) from None


__all__ = [
    "PASSWORD_KEY",
    "TOKEN_KEY",
    "USERNAME_KEY",
    "Credentials",
    "TokenCache",
    "fetch_reading",
    "read_csv_file",
    "redact",
]
