"""Each provider's answer becomes a reading in gCO2e/kWh with its method, or a clear reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifactory.api.carbon_signal import (
    CarbonSignalProvider,
    CsvReplay,
    EmissionFactorType,
    SignalType,
)
from aifactory.signals.carbon import (
    G_PER_KWH_PER_LB_PER_MWH,
    REASON_MALFORMED,
    REASON_METHOD_MISMATCH,
    REASON_NO_DATA,
    REASON_PROVIDER_ERROR,
    REASON_STALE,
    REASON_UNIT_MISMATCH,
    REASON_ZONE_MISMATCH,
    REASON_ZONE_NOT_FOUND,
    CarbonSignalError,
    csv_series,
    electricitymaps,
    ngeso,
    watttime,
)

DATA = Path(__file__).parent / "data"
LIMIT = timedelta(hours=3)
EM_NOW = datetime(2022, 6, 21, 12, 50, tzinfo=UTC)
WT_NOW = datetime(2024, 6, 21, 12, 2, tzinfo=UTC)
GB_NOW = datetime(2024, 6, 21, 12, 10, tzinfo=UTC)
AVERAGE, MARGINAL = SignalType.AVERAGE, SignalType.MARGINAL
LIFECYCLE, DIRECT = EmissionFactorType.LIFECYCLE, EmissionFactorType.DIRECT


def body(path: str) -> bytes:
    return (DATA / path).read_bytes()


@dataclass(frozen=True)
class Good:
    id: str
    parse: Any
    value: float
    method: tuple[SignalType, EmissionFactorType]
    estimated: bool
    zone: str
    data_time: datetime


GOOD = (
    Good(
        "electricitymaps-lifecycle",
        lambda: electricitymaps.parse(
            body("electricitymaps/latest_de.json"), now=EM_NOW, zone="DE", max_age=LIMIT
        ),
        394.0,
        (AVERAGE, LIFECYCLE),
        False,
        "DE",
        datetime(2022, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "electricitymaps-direct-estimated",
        lambda: electricitymaps.parse(
            body("electricitymaps/latest_de_direct_estimated.json"),
            now=EM_NOW,
            zone="DE",
            emission_factor_type=DIRECT,
        ),
        331.0,
        (AVERAGE, DIRECT),
        True,
        "DE",
        datetime(2022, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "watttime-moer-in-lbs-per-mwh",
        lambda: watttime.parse(
            body("watttime/forecast_caiso_north.json"),
            now=WT_NOW,
            region="CAISO_NORTH",
            max_age=LIMIT,
        ),
        870.0 * 0.45359237,
        (MARGINAL, DIRECT),
        True,
        "CAISO_NORTH",
        datetime(2024, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "ngeso-actual",
        lambda: ngeso.parse(
            body("ngeso/intensity_actual.json"),
            now=datetime(2024, 6, 21, 11, 45, tzinfo=UTC),
            max_age=LIMIT,
        ),
        101.0,
        (AVERAGE, DIRECT),
        False,
        "GB",
        datetime(2024, 6, 21, 11, 30, tzinfo=UTC),
    ),
    Good(
        "ngeso-forecast-only-is-estimated",
        lambda: ngeso.parse(body("ngeso/intensity_forecast_only.json"), now=GB_NOW),
        88.0,
        (AVERAGE, DIRECT),
        True,
        "GB",
        datetime(2024, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "csv-row-at-or-before-now",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="DE",
            now=datetime(2022, 6, 21, 12, 59, tzinfo=UTC),
            max_age=LIMIT,
        ),
        394.12,
        (AVERAGE, LIFECYCLE),
        False,
        "DE",
        datetime(2022, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "csv-replays-2022-onto-this-year",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="FR",
            now=datetime(2026, 6, 21, 12, 30, tzinfo=UTC),
            replay=CsvReplay.YEAR,
            max_age=LIMIT,
        ),
        98.06,
        (AVERAGE, LIFECYCLE),
        False,
        "FR",
        datetime(2026, 6, 21, 12, tzinfo=UTC),
    ),
    Good(
        "csv-replay-wraps-new-year-to-the-series-end",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="PL",
            now=datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            replay=CsvReplay.YEAR,
            emission_factor_type=DIRECT,
        ),
        667.40,
        (AVERAGE, DIRECT),
        False,
        "PL",
        datetime(2026, 1, 1, 0, tzinfo=UTC),
    ),
)


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.id)
def test_answers_become_readings(case: Good) -> None:
    r = case.parse()
    assert r.carbon_intensity == pytest.approx(case.value)
    assert (r.signal_type, r.emission_factor_type) == case.method
    assert r.estimated is case.estimated
    assert r.zone == case.zone
    assert r.data_time == case.data_time
    assert r.data_time.tzinfo is not None and r.read_at.tzinfo is not None


def test_watttime_conversion_factor_is_the_pound() -> None:
    # 1 lb = 0.45359237 kg exactly; lb/MWh -> g/kWh divides by 1000 twice over.
    assert G_PER_KWH_PER_LB_PER_MWH == 453.59237 / 1000


def test_electricitymaps_keeps_provider_timestamps() -> None:
    r = electricitymaps.parse(body("electricitymaps/latest_de.json"), now=EM_NOW)
    assert r.updated_at == datetime(2022, 6, 21, 12, 47, 10, 131000, tzinfo=UTC)
    assert r.provider is CarbonSignalProvider.ELECTRICITY_MAPS
    assert r.age(EM_NOW) == timedelta(minutes=50)


@dataclass(frozen=True)
class Bad:
    id: str
    parse: Any
    reason: str
    words: str


BAD = (
    Bad(
        "em-null",
        lambda: electricitymaps.parse(body("electricitymaps/latest_null.json"), now=EM_NOW),
        REASON_NO_DATA,
        "no carbon intensity for DE",
    ),
    Bad(
        "em-stale",
        lambda: electricitymaps.parse(
            body("electricitymaps/latest_stale.json"), now=EM_NOW, max_age=LIMIT
        ),
        REASON_STALE,
        "is from 2022-06-19T03:00:00+00:00, 57h50m old (limit 3h00m)",
    ),
    Bad(
        "em-other-zone",
        lambda: electricitymaps.parse(
            body("electricitymaps/latest_other_zone.json"), now=EM_NOW, zone="DE"
        ),
        REASON_ZONE_MISMATCH,
        "asked for zone DE, Electricity Maps answered for FR",
    ),
    Bad(
        "em-unit",
        lambda: electricitymaps.parse(body("electricitymaps/latest_unit_lbs.json"), now=EM_NOW),
        REASON_UNIT_MISMATCH,
        "'lbsCO2eq/MWh', expected gCO2eq/kWh",
    ),
    Bad(
        "em-asked-lifecycle-got-direct",
        lambda: electricitymaps.parse(
            body("electricitymaps/latest_de_direct_estimated.json"),
            now=EM_NOW,
            emission_factor_type=LIFECYCLE,
        ),
        REASON_METHOD_MISMATCH,
        "asked for lifecycle emission factors, got direct",
    ),
    Bad(
        "em-malformed",
        lambda: electricitymaps.parse(body("electricitymaps/latest_malformed.json"), now=EM_NOW),
        REASON_MALFORMED,
        "carbonIntensity must be a number",
    ),
    Bad(
        "em-html",
        lambda: electricitymaps.parse(body("electricitymaps/gateway_error.html"), now=EM_NOW),
        REASON_MALFORMED,
        "did not answer with JSON",
    ),
    Bad(
        "wt-aoer",
        lambda: watttime.parse(body("watttime/forecast_aoer.json"), now=WT_NOW),
        REASON_UNIT_MISMATCH,
        "signal_type is 'co2_aoer', expected co2_moer",
    ),
    Bad(
        "wt-kg",
        lambda: watttime.parse(body("watttime/forecast_kg_units.json"), now=WT_NOW),
        REASON_UNIT_MISMATCH,
        "'kg_co2_per_mwh', expected lbs_co2_per_mwh",
    ),
    Bad(
        "wt-stale",
        lambda: watttime.parse(body("watttime/forecast_stale.json"), now=WT_NOW, max_age=LIMIT),
        REASON_STALE,
        "30h02m old",
    ),
    Bad(
        "wt-empty",
        lambda: watttime.parse(body("watttime/forecast_empty.json"), now=WT_NOW),
        REASON_NO_DATA,
        "no data points for CAISO_NORTH",
    ),
    Bad(
        "wt-malformed",
        lambda: watttime.parse(body("watttime/forecast_malformed.json"), now=WT_NOW),
        REASON_MALFORMED,
        "data[0].value must be a number",
    ),
    Bad(
        "wt-other-region",
        lambda: watttime.parse(
            body("watttime/forecast_caiso_north.json"), now=WT_NOW, region="PJM_DC"
        ),
        REASON_ZONE_MISMATCH,
        "asked for region PJM_DC",
    ),
    Bad(
        "gb-stale",
        lambda: ngeso.parse(body("ngeso/intensity_stale.json"), now=GB_NOW, max_age=LIMIT),
        REASON_STALE,
        "GB is from 2024-06-19T21:00:00+00:00",
    ),
    Bad(
        "gb-error-object",
        lambda: ngeso.parse(body("ngeso/intensity_error.json"), now=GB_NOW),
        REASON_PROVIDER_ERROR,
        "400 Bad Request: Please enter a valid ISO 8601 datetime",
    ),
    Bad(
        "gb-negative",
        lambda: ngeso.parse(body("ngeso/intensity_malformed.json"), now=GB_NOW),
        REASON_MALFORMED,
        "intensity.forecast must be a finite number >= 0",
    ),
    Bad(
        "gb-not-started",
        lambda: ngeso.parse(
            body("ngeso/intensity_forecast_only.json"),
            now=datetime(2024, 6, 21, 11, 0, tzinfo=UTC),
        ),
        REASON_NO_DATA,
        "no half-hour period has started yet",
    ),
    Bad(
        "csv-bad-cell",
        lambda: csv_series.parse(
            body("csv/ci_malformed.csv").decode(),
            zone="DE",
            now=datetime(2022, 6, 21, 12, tzinfo=UTC),
        ),
        REASON_MALFORMED,
        "line 3: DE 'n/a' is not a number",
    ),
    Bad(
        "csv-unknown-zone",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="IS",
            now=datetime(2022, 6, 21, 12, tzinfo=UTC),
        ),
        REASON_ZONE_NOT_FOUND,
        "no column IS among the series' 4 zones",
    ),
    Bad(
        "csv-before-the-series",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="DE",
            now=datetime(2021, 12, 31, tzinfo=UTC),
        ),
        REASON_NO_DATA,
        "starts at 2022-01-01T00:00:00+00:00",
    ),
    Bad(
        "csv-after-the-series-is-stale",
        lambda: csv_series.parse(
            body("csv/ci_lca_2022_hourly_excerpt.csv").decode(),
            zone="DE",
            now=datetime(2023, 1, 2, tzinfo=UTC),
            max_age=LIMIT,
        ),
        REASON_STALE,
        "is from 2022-12-31T22:00:00+00:00",
    ),
    Bad(
        "csv-empty",
        lambda: csv_series.parse("", zone="DE", now=EM_NOW),
        REASON_MALFORMED,
        "no header row",
    ),
)


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_answers_raise_one_error_family_with_a_reason(case: Bad) -> None:
    with pytest.raises(CarbonSignalError) as info:
        case.parse()
    assert info.value.reason == case.reason
    assert case.words in info.value.message, info.value.message
    assert info.value.provider


def test_csv_gaps_are_skipped_not_read_as_zero() -> None:
    text = "datetime_utc,DE\n2022-06-21T10:00:00Z,380\n2022-06-21T11:00:00Z,\n"
    r = csv_series.parse(text, zone="DE", now=datetime(2022, 6, 21, 11, 30, tzinfo=UTC))
    assert r.carbon_intensity == 380
    assert r.data_time == datetime(2022, 6, 21, 10, tzinfo=UTC)


def test_csv_naive_times_are_utc_and_29_february_replays_on_28() -> None:
    text = "time,DE\n2024-02-28 23:00:00,1\n2024-02-29 12:00:00,2\n2024-03-01 00:00:00,3\n"
    r = csv_series.parse(
        text, zone="DE", now=datetime(2025, 2, 28, 23, 30, tzinfo=UTC), replay=CsvReplay.YEAR
    )
    assert r.carbon_intensity == 1
    r = csv_series.parse(text, zone="DE", now=datetime(2024, 2, 29, 13, tzinfo=UTC))
    assert r.carbon_intensity == 2 and r.data_time.tzinfo is not None


def test_naive_now_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ngeso.parse(body("ngeso/intensity_actual.json"), now=datetime(2024, 6, 21, 12))


def test_requests_never_put_credentials_in_the_url() -> None:
    em = electricitymaps.request("US-CAL-CISO", "s3cr3t-token", emission_factor_type=DIRECT)
    assert em.url == (
        "https://api.electricitymaps.com/v3/carbon-intensity/latest"
        "?zone=US-CAL-CISO&emissionFactorType=direct"
    )
    assert em.headers["auth-token"] == "s3cr3t-token"
    assert "s3cr3t" not in repr(em)
    login = watttime.login_request("alice", "pa55word", url="https://proxy.example/")
    assert login.url == "https://proxy.example/login"
    assert "pa55word" not in login.url and "pa55word" not in repr(login)
    assert login.headers["Authorization"].startswith("Basic ")
    forecast = watttime.request("CAISO_NORTH", "jwt")
    assert forecast.url.endswith("/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer")
    assert forecast.headers["Authorization"] == "Bearer jwt"
    assert ngeso.request().url == "https://api.carbonintensity.org.uk/intensity"
    assert watttime.parse_login(body("watttime/login.json")).startswith("eyJ")
