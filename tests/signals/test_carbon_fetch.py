"""Polling a module's spec.energy.signal through an injected HTTP getter: requests, status
codes, WattTime's login, and credentials that never leak into messages."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifactory.api.carbon_signal import CarbonSignal
from aifactory.signals.carbon import (
    REASON_MALFORMED,
    REASON_MISSING_CREDENTIALS,
    REASON_PROVIDER_ERROR,
    REASON_RATE_LIMITED,
    REASON_STALE,
    REASON_UNAUTHORIZED,
    REASON_UNREACHABLE,
    REASON_ZONE_NOT_FOUND,
    CarbonSignalError,
    Credentials,
    HttpRequest,
    HttpResponse,
    fetch_reading,
    read_csv_file,
)
from aifactory.signals.carbon.fetch import TokenCache

DATA = Path(__file__).parent / "data"
EM_NOW = datetime(2022, 6, 21, 12, 50, tzinfo=UTC)
WT_NOW = datetime(2024, 6, 21, 12, 2, tzinfo=UTC)
TOKEN = "em-7f3a9c-planted-secret-token"
USER, PASSWORD = "feed-bot", "planted-pa55word-Zq9"
SECRET = {"namespace": "aifactory-system", "name": "carbon-feed"}


def signal(**kw: Any) -> CarbonSignal:
    return CarbonSignal.model_validate(kw)


EM = signal(provider="ElectricityMaps", zone="DE", credentialsSecretRef=SECRET)
WT = signal(provider="WattTime", zone="CAISO_NORTH", credentialsSecretRef=SECRET)
GB = signal(provider="NationalGridESO", zone="GB", url="http://mirror.local:8080/")


class Server:
    """A getter answering from a script of (status, body) per URL path, recording requests."""

    def __init__(self, routes: dict[str, list[tuple[int, bytes]] | Exception]) -> None:
        self.routes = routes
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        path = request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        answer = self.routes["/" + path]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer.pop(0) if len(answer) > 1 else answer[0]
        return HttpResponse(status, body)


def fixture(path: str) -> bytes:
    return (DATA / path).read_bytes()


def test_electricitymaps_token_goes_in_the_auth_header() -> None:
    server = Server(
        {"/v3/carbon-intensity/latest": [(200, fixture("electricitymaps/latest_de.json"))]}
    )
    r = fetch_reading(EM, now=EM_NOW, http_get=server, credentials=Credentials(token=TOKEN))
    assert r.carbon_intensity == 394
    (req,) = server.requests
    assert req.headers["auth-token"] == TOKEN and TOKEN not in req.url
    assert "emissionFactorType=lifecycle" in req.url and "zone=DE" in req.url
    assert req.timeout == 10


def test_fleet_basis_is_requested_when_the_signal_does_not_say() -> None:
    server = Server(
        {
            "/v3/carbon-intensity/latest": [
                (200, fixture("electricitymaps/latest_de_direct_estimated.json"))
            ]
        }
    )
    r = fetch_reading(
        EM,
        now=EM_NOW,
        http_get=server,
        credentials=Credentials(token=TOKEN),
        default_emission_factor_type="direct",  # as the operator setting spells it
    )
    assert r.emission_factor_type.value == "direct"
    assert "emissionFactorType=direct" in server.requests[0].url


def test_watttime_logs_in_then_reuses_its_token() -> None:
    login = fixture("watttime/login.json")
    server = Server(
        {
            "/login": [(200, login)],
            "/v3/forecast": [(200, fixture("watttime/forecast_caiso_north.json"))],
        }
    )
    cache: TokenCache = {}
    creds = Credentials(username=USER, password=PASSWORD)
    for minutes in (0, 10):
        r = fetch_reading(
            WT,
            now=WT_NOW + timedelta(minutes=minutes),
            http_get=server,
            credentials=creds,
            token_cache=cache,
        )
        assert r.signal_type.value == "marginal"
    paths = [q.url.split("api.watttime.org")[1].split("?")[0] for q in server.requests]
    assert paths == ["/login", "/v3/forecast", "/v3/forecast"]
    basic = base64.b64decode(server.requests[0].headers["Authorization"].split()[1]).decode()
    assert basic == f"{USER}:{PASSWORD}"
    assert server.requests[1].headers["Authorization"].startswith("Bearer eyJ")


def test_watttime_logs_in_again_when_a_cached_token_is_refused() -> None:
    server = Server(
        {
            "/login": [(200, fixture("watttime/login.json"))],
            "/v3/forecast": [(401, b""), (200, fixture("watttime/forecast_caiso_north.json"))],
        }
    )
    cache: TokenCache = {
        ("https://api.watttime.org", USER): ("expired-jwt", WT_NOW + timedelta(minutes=5))
    }
    r = fetch_reading(
        WT,
        now=WT_NOW,
        http_get=server,
        credentials=Credentials(username=USER, password=PASSWORD),
        token_cache=cache,
    )
    assert r.zone == "CAISO_NORTH"
    assert (
        len(server.requests) == 3 and cache[("https://api.watttime.org", USER)][0] != "expired-jwt"
    )


def test_national_grid_eso_uses_the_url_override_and_no_credentials() -> None:
    server = Server({"/intensity": [(200, fixture("ngeso/intensity_forecast_only.json"))]})
    r = fetch_reading(GB, now=datetime(2024, 6, 21, 12, 10, tzinfo=UTC), http_get=server)
    assert r.carbon_intensity == 88 and r.estimated
    assert server.requests[0].url == "http://mirror.local:8080/intensity"
    assert "Authorization" not in server.requests[0].headers


def test_csv_signal_reads_the_text_it_is_given(tmp_path: Path) -> None:
    sig = signal(
        provider="CSV", zone="GB", csv={"path": str(tmp_path / "ci.csv"), "replay": "Year"}
    )
    text = read_csv_file(DATA / "csv/ci_lca_2022_hourly_excerpt.csv")
    r = fetch_reading(
        sig, now=datetime(2025, 1, 2, 5, 10, tzinfo=UTC), http_get=Server({}), csv_text=text
    )
    assert r.carbon_intensity == pytest.approx(float(text.splitlines()[30].split(",")[3]))
    assert r.data_time == datetime(2025, 1, 2, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="csv_text"):
        fetch_reading(sig, now=EM_NOW, http_get=Server({}))


def test_gzipped_and_missing_csv_files(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "ci.csv.gz"
    gz.write_bytes(gzip.compress(b"datetime_utc,DE\n2022-01-01T00:00:00Z,216.56\n"))
    assert read_csv_file(gz).startswith("datetime_utc,DE")
    with pytest.raises(CarbonSignalError) as info:
        read_csv_file(tmp_path / "nope.csv")
    assert info.value.reason == REASON_UNREACHABLE and "No such file" in info.value.message


@pytest.mark.parametrize(
    ("answer", "reason", "words"),
    [
        (
            (401, b'{"message": "Unauthorized"}'),
            REASON_UNAUTHORIZED,
            "Secret aifactory-system/carbon-feed (HTTP 401)",
        ),
        ((403, b""), REASON_UNAUTHORIZED, "refused the credentials"),
        ((404, b'{"error": "Zone not found"}'), REASON_ZONE_NOT_FOUND, "knows no zone DE"),
        ((429, b""), REASON_RATE_LIMITED, "rate limit"),
        (
            (502, fixture("electricitymaps/gateway_error.html")),
            REASON_UNREACHABLE,
            "unavailable (HTTP 502)",
        ),
        (
            (500, b'{"message": "internal"}'),
            REASON_PROVIDER_ERROR,
            'HTTP 500: {"message": "internal"}',
        ),
        (
            (200, fixture("electricitymaps/gateway_error.html")),
            REASON_MALFORMED,
            "did not answer with JSON",
        ),
        (
            TimeoutError("timed out"),
            REASON_UNREACHABLE,
            "cannot reach ElectricityMaps at api.electricitymaps.com: TimeoutError",
        ),
        (ConnectionRefusedError(111, "refused"), REASON_UNREACHABLE, "ConnectionRefusedError"),
    ],
)
def test_every_failure_is_a_carbon_signal_error(
    answer: tuple[int, bytes] | Exception, reason: str, words: str
) -> None:
    route: Any = answer if isinstance(answer, Exception) else [answer]
    with pytest.raises(CarbonSignalError) as info:
        fetch_reading(
            EM,
            now=EM_NOW,
            http_get=Server({"/v3/carbon-intensity/latest": route}),
            credentials=Credentials(token=TOKEN),
        )
    assert info.value.reason == reason
    assert words in info.value.message
    assert info.value.provider == "ElectricityMaps"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_stale_limit_applies_to_fetched_readings() -> None:
    server = Server(
        {"/v3/carbon-intensity/latest": [(200, fixture("electricitymaps/latest_stale.json"))]}
    )
    with pytest.raises(CarbonSignalError) as info:
        fetch_reading(
            EM,
            now=EM_NOW,
            http_get=server,
            credentials=Credentials(token=TOKEN),
            max_age=timedelta(hours=3),
        )
    assert info.value.reason == REASON_STALE


def test_missing_credentials_name_the_secret_not_its_content() -> None:
    with pytest.raises(CarbonSignalError) as info:
        fetch_reading(EM, now=EM_NOW, http_get=Server({}), credentials=Credentials(username="x"))
    assert info.value.reason == REASON_MISSING_CREDENTIALS
    assert (
        info.value.message == "ElectricityMaps needs token in Secret aifactory-system/carbon-feed"
    )
    with pytest.raises(CarbonSignalError, match="needs username and password"):
        fetch_reading(WT, now=WT_NOW, http_get=Server({}), credentials=Credentials(token="t"))


def test_credentials_from_secret_data() -> None:
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    c = Credentials.from_secret({"token": b64(TOKEN + "\n"), "username": b64(USER)})
    assert (c.token, c.username, c.password) == (TOKEN, USER, None)
    assert TOKEN not in repr(c) and USER not in repr(c)
    assert Credentials.from_secret({"password": "plain"}, base64_encoded=False).password == "plain"
    with pytest.raises(CarbonSignalError) as info:
        Credentials.from_secret({"token": "not base64 !"})
    assert info.value.reason == REASON_MISSING_CREDENTIALS and "not base64 !" not in str(info.value)


Echo = Callable[[HttpRequest], HttpResponse]


def echoing(status: int) -> Echo:
    """A hostile or buggy endpoint that echoes every request header back in its body."""

    def get(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, repr(dict(request.headers)).encode())

    return get


@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize("sig", [EM, WT], ids=["electricitymaps", "watttime"])
def test_credentials_never_appear_in_errors_or_logs(
    caplog: pytest.LogCaptureFixture, sig: CarbonSignal, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = Credentials(token=TOKEN, username=USER, password=PASSWORD)
    with pytest.raises(CarbonSignalError) as info:
        fetch_reading(sig, now=EM_NOW, http_get=echoing(status), credentials=creds)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    text = f"{info.value} {info.value.message!r} {info.value!r} {caplog.text}"
    for secret in (TOKEN, USER, PASSWORD, basic):
        assert secret not in text
    if status != 200:
        assert "***" in info.value.message  # the echo was there, and was redacted
