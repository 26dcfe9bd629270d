"""Carbon series: which column a module reads, true and effective (smoothed) intensity."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aifactory.api import AIFactoryModule
from aifactory.simulation.replay import period_steps
from aifactory.simulation.series import (
    ZONE_KEY,
    SeriesError,
    energy_timeline,
    load_carbon,
    read_zone_map,
    zone_of,
)

T0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()


def module(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    signal_zone: str | None = None,
) -> AIFactoryModule:
    energy: dict[str, Any] = {
        "sources": [{"type": "grid", "share": 1.0}],
        "carbonIntensity": 300,
        "powerBudgetKW": 10,
        "pue": 1.2,
    }
    if signal_zone:
        energy["signal"] = {
            "provider": "ElectricityMaps",
            "zone": signal_zone,
            "credentialsSecretRef": {"namespace": "aifactory-system", "name": "em"},
        }
    return AIFactoryModule.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "AIFactoryModule",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {
                "location": {"country": "DE", "latitude": 50.1, "longitude": 8.7},
                "energy": energy,
                "capacity": {
                    "gpus": [{"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700}]
                },
                "cluster": {"nodeSelector": {"aifactory.dev/module": name}},
            },
        }
    )


def test_zone_order_mapping_then_label_or_annotation_then_signal() -> None:
    m = module("m", annotations={ZONE_KEY: "DE"}, signal_zone="FR")
    assert zone_of(m) == "DE"
    assert zone_of(m, {"m": "PL"}) == "PL"
    assert zone_of(module("m", labels={ZONE_KEY: "ES"})) == "ES"
    assert zone_of(module("m", signal_zone="FR")) == "FR"
    assert zone_of(module("m")) is None


def write_series(path: Path, rows: list[str], *, gz: bool = False) -> Path:
    text = "datetime_utc,DE,FR\n" + "\n".join(rows) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def hourly(values: list[tuple[float, float]]) -> list[str]:
    return [f"2022-01-01T{h:02d}:00:00Z,{de},{fr}" for h, (de, fr) in enumerate(values)]


def test_series_read_gzipped_and_malformed_lines_named(tmp_path: Path) -> None:
    series = load_carbon([write_series(tmp_path / "s.csv.gz", hourly([(400, 50)]), gz=True)])
    assert series.covers("DE") and series.covers("FR")
    bad = write_series(tmp_path / "bad.csv", ["2022-01-01T00:00:00Z,400,fifty"])
    with pytest.raises(SeriesError, match="line 2"):
        load_carbon([bad])


def test_true_follows_the_series_and_effective_waits_for_smoothing(tmp_path: Path) -> None:
    values = [(400.0, 50.0)] * 3 + [(100.0, 50.0)] * 5
    series = load_carbon([write_series(tmp_path / "s.csv", hourly(values))])
    steps = period_steps(T0, T0 + 8 * 3600, 3600)
    mods = [module("de", annotations={ZONE_KEY: "DE"})]
    common = {
        "step_s": 3600.0,
        "slots": 12,
        "poll_s": 300.0,
        "min_readings": 2,
        "max_age_s": 10800.0,
    }
    fast = energy_timeline(mods, series, steps, tolerance_s=60.0, **common)  # type: ignore[arg-type]
    assert fast.true[:, 0, 0].tolist() == [400, 400, 400, 100, 100, 100, 100, 100]
    # accepted 5 minutes into its hour: the step uses it
    assert fast.effective[:, 0].tolist() == [400, 400, 400, 100, 100, 100, 100, 100]
    slow = energy_timeline(mods, series, steps, tolerance_s=7200.0, **common)  # type: ignore[arg-type]
    assert slow.effective[:, 0].tolist() == [400, 400, 400, 400, 400, 100, 100, 100]


def test_no_zone_or_stale_series_fall_back_to_the_declared_value(tmp_path: Path) -> None:
    series = load_carbon([write_series(tmp_path / "s.csv", hourly([(400.0, 50.0)]))])
    steps = period_steps(T0, T0 + 6 * 3600, 3600)
    mods = [module("de", annotations={ZONE_KEY: "DE"}), module("none")]
    t = energy_timeline(
        mods,
        series,
        steps,
        step_s=3600,
        slots=1,
        poll_s=300,
        tolerance_s=60,
        min_readings=2,
        max_age_s=3 * 3600,
    )
    assert t.true[:, 0, 0].tolist() == [400, 400, 400, 400, 300, 300]  # stale after 3 h
    assert np.all(t.true[:, 0, 1] == 300) and t.zones == ("DE", None)
    assert any("none: no grid zone" in w for w in t.warnings)
    assert any("no fresh value" in w for w in t.warnings)


def test_zone_map_file(tmp_path: Path) -> None:
    (tmp_path / "z.csv").write_text("module,zone\nparis,FR\n# comment\noslo,NO-NO1\n")
    assert read_zone_map(tmp_path / "z.csv") == {"paris": "FR", "oslo": "NO-NO1"}
    (tmp_path / "bad.csv").write_text("paris,FR\nparis,DE\nlonely\n")
    with pytest.raises(SeriesError, match=r"line 2.*line 3"):
        read_zone_map(tmp_path / "bad.csv")
