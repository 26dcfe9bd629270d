"""A 30-zone fleet on real data: one module per Electricity Maps zone that hosts a GCP region.

Modules sit at their GCP region's coordinates (bench/data/latency/gcp_region_coords.json) and
read that zone's January 2022 carbon series (tests/simulation/data); demand regions sit at GCP
regions too, so the measured mean RTTs between GCP regions (bench/data/latency/
gcp_interregion_rtt_ms_raw.csv) cover every (region, module) pair, with 5 ms within a region (the
convention of the shared matrix file). Every module has one H100 pool, so a replica's emissions
are proportional to its module's carbon intensity x PUE, the engine's carbon term.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from aifactory.api import AIFactoryModule, InferenceDeployment, SovereigntyPolicy
from aifactory.placement.rtt import RttTable
from aifactory.simulation import Scenario

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
LATENCY = REPO / "bench" / "data" / "latency"
CARBON = DATA / "ci_lca_2022-01_hourly_gcp30.csv.gz"
SELF_RTT_MS = 5.0

#: Zone code -> ISO 3166-1 country (Electricity Maps sub-zones start with the country).
_SPECIAL = {"AUS-NSW": "AU", "AUS-VIC": "AU"}


def country_of(zone: str) -> str:
    return _SPECIAL.get(zone, zone.split("-")[0])


def zones() -> list[str]:
    with CARBON.open("rb") as raw:
        import gzip

        header = gzip.decompress(raw.read()).decode().splitlines()[0]
    return header.split(",")[1:]


def regions_by_zone() -> dict[str, str]:
    """Zone -> the first GCP region (sorted) in it, for the 30 zones of the series."""
    mapper = json.loads((DATA / "gcp_dc_zonecode_mapper.json").read_text())
    wanted = set(zones())
    out: dict[str, str] = {}
    for region, zone in sorted(mapper.items()):
        if zone in wanted and zone not in out:
            out[zone] = region
    return out


def coords() -> dict[str, tuple[float, float]]:
    raw = json.loads((LATENCY / "gcp_region_coords.json").read_text())
    return {k: (float(v["lat"]), float(v["lon"])) for k, v in raw.items()}


def module(zone: str, region: str, lat: float, lon: float) -> AIFactoryModule:
    country = country_of(zone)
    doc: dict[str, Any] = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": region, "annotations": {"aifactory.dev/grid-zone": zone}},
        "spec": {
            "location": {"country": country, "latitude": lat, "longitude": lon},
            "energy": {
                "sources": [{"type": "grid", "share": 1.0}],
                "carbonIntensity": 300,
                "powerBudgetKW": 14,
                "pue": 1.2,
            },
            "capacity": {"gpus": [{"model": "H100", "count": 16, "memoryGiB": 80, "powerW": 700}]},
            "security": {"certifications": ["ISO27001"], "operatorCountry": country},
            "cluster": {"nodeSelector": {"aifactory.dev/module": region}},
        },
    }
    return AIFactoryModule.from_manifest(doc)


def deployment(
    name: str,
    namespace: str,
    regions: list[tuple[str, float]],
    *,
    slo: float | None,
    min_modules: int = 2,
    classification: str = "internal",
    fixed: int | None = None,
) -> InferenceDeployment:
    by_zone = {r: z for z, r in regions_by_zone().items()}
    where = coords()
    spec: dict[str, Any] = {
        "model": {"name": name, "image": "registry.example/serve:1.2", "port": 8080},
        "resources": {"gpusPerReplica": 1, "gpuModels": ["H100"]},
        "dataClassification": classification,
    }
    if fixed is not None:
        spec["replicas"] = {"fixed": fixed}
        spec["objective"] = {"latencyWeight": 0.0, "carbonWeight": 1.0}
    else:
        spec["replicas"] = {"min": 2, "max": 100}
        spec["throughputPerReplica"] = 50
        spec["demand"] = {
            "headroom": 0.2,
            "regions": [
                {
                    "name": r,
                    "country": country_of(by_zone[r]),
                    "latitude": where[r][0],
                    "longitude": where[r][1],
                    "requestsPerSecond": rps,
                }
                for r, rps in regions
            ],
        }
        spec["slo"] = {"maxLatencyMs": slo, "minModules": min_modules}
    return InferenceDeployment.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "InferenceDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def scenario() -> Scenario:
    """30 modules, four deployments (one bound by an EU residency policy), three namespaces."""
    where = coords()
    modules = [module(z, r, *where[r]) for z, r in sorted(regions_by_zone().items())]
    deployments = [
        deployment(
            "chat",
            "global",
            [
                ("us-east4", 300),
                ("us-west1", 200),
                ("europe-west1", 300),
                ("asia-northeast1", 200),
                ("asia-southeast1", 150),
                ("southamerica-east1", 100),
            ],
            slo=80,
            min_modules=3,
        ),
        deployment(
            "docs",
            "eu",
            [("europe-west1", 200), ("europe-west3", 300)],
            slo=30,
            classification="restricted",
        ),
        deployment(
            "search", "global", [("us-east4", 200), ("us-central1", 200), ("us-west1", 200)], slo=60
        ),
        deployment("batch", "jobs", [], slo=None, fixed=10),
    ]
    policy = SovereigntyPolicy.from_manifest(
        {
            "apiVersion": "aifactory.dev/v1alpha1",
            "kind": "SovereigntyPolicy",
            "metadata": {"name": "eu-residency"},
            "spec": {
                "namespaceSelector": {"matchLabels": {"residency": "eu"}},
                "allowedJurisdictions": ["EU", "EEA"],
                "dataResidency": "SameJurisdictionAsDemand",
                "enforcement": "Enforce",
            },
        }
    )
    return Scenario(
        modules=tuple(modules),
        deployments=tuple(deployments),
        policies=(policy,),
        namespaces={"global": {}, "eu": {"residency": "eu"}, "jobs": {}},
    )


DEMAND_REGIONS = (
    "asia-northeast1",
    "asia-southeast1",
    "europe-west1",
    "europe-west3",
    "southamerica-east1",
    "us-central1",
    "us-east4",
    "us-west1",
)


def rtt_rows() -> list[tuple[str, str, float]]:
    """(region, module, ms) for every demand region and module of `scenario`, measured."""
    names = set(regions_by_zone().values())
    rows = []
    with (LATENCY / "gcp_interregion_rtt_ms_raw.csv").open() as f:
        for r in csv.DictReader(f):
            if r["receiving_region"] in names and r["sending_region"] in DEMAND_REGIONS:
                rows.append((r["sending_region"], r["receiving_region"], float(r["milliseconds"])))
    rows += [(n, n, SELF_RTT_MS) for n in DEMAND_REGIONS if n in names]
    return rows


def rtt_table() -> RttTable:
    return RttTable.from_rows(rtt_rows(), source="gcp_interregion_rtt_ms_raw.csv")


def write_rtt_csv(path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["region", "module", "rttMs"])
        w.writerows(rtt_rows())
    return path
