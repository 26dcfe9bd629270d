"""Invalid manifests, each with the field its rejection must name.

One table serves both sides of the contract: the offline pydantic validation
(test_models.py) and the apiserver with the generated CRDs (test_crds_server.py). A rule that
only one of them enforces shows up as a failure in the other.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"

Manifest = dict[str, Any]


def load_samples(name: str) -> list[Manifest]:
    return [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]


def base(kind: str) -> Manifest:
    """A valid manifest of `kind` to break: the first matching sample."""
    file = {
        "AIFactoryModule": "modules.yaml",
        "InferenceDeployment": "deployments.yaml",
        "SovereigntyPolicy": "policies.yaml",
    }[kind]
    return copy.deepcopy(next(d for d in load_samples(file) if d["kind"] == kind))


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(doc: Manifest, path: str, value: Any) -> None:
    """Set `spec.capacity.gpus[0].count`-style paths, creating dicts on the way."""
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    node: Any = doc
    for step in steps[:-1]:
        node = node[step] if isinstance(step, int) else node.setdefault(step, {})
    node[steps[-1]] = value


def delete_path(doc: Manifest, path: str) -> None:
    parent, _, last = path.rpartition(".")
    node: Any = doc
    for name, index in _STEP.findall(parent):
        node = node[name] if name else node[int(index)]
    del node[last]


@dataclass(frozen=True)
class Invalid:
    id: str
    kind: str
    #: (path, value) pairs to set; a value of DELETE removes the key.
    changes: tuple[tuple[str, Any], ...]
    #: The field path the error must name (Kubernetes notation, as kubectl prints it).
    field: str
    #: Text the apiserver's message must contain.
    server: str
    #: Text the pydantic error must contain (defaults to `server`).
    offline: str | None = None
    #: Alternatives accepted in place of `server` (e.g. list-map duplicate errors).
    server_alternatives: tuple[str, ...] = ()

    def manifest(self) -> Manifest:
        doc = base(self.kind)
        doc["metadata"]["name"] = f"invalid-{self.id}"
        doc["metadata"].pop("labels", None)
        for path, value in self.changes:
            if value is DELETE:
                delete_path(doc, path)
            else:
                set_path(doc, path, value)
        return doc

    @property
    def offline_text(self) -> str:
        return self.offline if self.offline is not None else self.server


DELETE = object()

H100 = {"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700}
REGION = {
    "name": "eu-west",
    "country": "IE",
    "latitude": 53.35,
    "longitude": -6.26,
    "requestsPerSecond": 10,
}
SCHEDULE_DAY = {"fromHour": 8, "toHour": 18, "carbonIntensity": 40, "renewableShare": 0.9}
WATTTIME = {
    "provider": "WattTime",
    "zone": "CAISO_NORTH",
    "credentialsSecretRef": {"namespace": "aifactory-system", "name": "watttime"},
}
PROMETHEUS = {
    "url": "http://prometheus.monitoring:9090",
    "query": "sum by (region) (rate(http_requests_total[1m]))",
}

INVALID: tuple[Invalid, ...] = (
    # AIFactoryModule
    Invalid(
        "country-unassigned",
        "AIFactoryModule",
        (("spec.location.country", "XX"),),
        "spec.location.country",
        "ISO 3166-1 alpha-2",
    ),
    Invalid(
        "country-lowercase",
        "AIFactoryModule",
        (("spec.location.country", "is"),),
        "spec.location.country",
        "ISO 3166-1 alpha-2",
    ),
    Invalid(
        "shares-sum-0.7",
        "AIFactoryModule",
        (
            (
                "spec.energy.sources",
                [{"type": "geothermal", "share": 0.5}, {"type": "grid", "share": 0.2}],
            ),
        ),
        "spec.energy.sources",
        "energy.sources[].share must sum to 1",
    ),
    Invalid(
        "unknown-energy-source",
        "AIFactoryModule",
        (("spec.energy.sources", [{"type": "coal", "share": 1.0}]),),
        "spec.energy.sources[0].type",
        "Unsupported value",
        offline="'solar'",
    ),
    Invalid(
        "both-cluster-refs",
        "AIFactoryModule",
        (("spec.cluster.nodeSelector", {"aifactory.dev/module": "reykjavik"}),),
        "spec.cluster",
        "exactly one of kubeconfigSecretRef or nodeSelector",
    ),
    Invalid(
        "no-cluster-ref",
        "AIFactoryModule",
        (("spec.cluster.kubeconfigSecretRef", DELETE),),
        "spec.cluster",
        "exactly one of kubeconfigSecretRef or nodeSelector",
    ),
    Invalid(
        "negative-gpus",
        "AIFactoryModule",
        (("spec.capacity.gpus[0].count", -1),),
        "spec.capacity.gpus[0].count",
        "greater than or equal to 0",
    ),
    Invalid(
        "latitude-95",
        "AIFactoryModule",
        (("spec.location.latitude", 95),),
        "spec.location.latitude",
        "less than or equal to 90",
    ),
    Invalid(
        "longitude-minus-181",
        "AIFactoryModule",
        (("spec.location.longitude", -181),),
        "spec.location.longitude",
        "greater than or equal to -180",
    ),
    Invalid(
        "duplicate-gpu-model",
        "AIFactoryModule",
        (("spec.capacity.gpus", [H100, H100]),),
        "spec.capacity.gpus",
        "capacity.gpus[].model must be unique",
        server_alternatives=("Duplicate value", "duplicate entries for key"),
    ),
    Invalid(
        "pue-below-1",
        "AIFactoryModule",
        (("spec.energy.pue", 0.9),),
        "spec.energy.pue",
        "greater than or equal to 1",
    ),
    Invalid(
        "schedule-from-after-to",
        "AIFactoryModule",
        (("spec.energy.schedule", [{**SCHEDULE_DAY, "fromHour": 18, "toHour": 8}]),),
        "spec.energy.schedule[0]",
        "energy.schedule[].fromHour must be less than toHour",
    ),
    Invalid(
        "schedule-overlap",
        "AIFactoryModule",
        (("spec.energy.schedule", [SCHEDULE_DAY, {**SCHEDULE_DAY, "fromHour": 17, "toHour": 24}]),),
        "spec.energy.schedule",
        "energy.schedule entries must not overlap",
    ),
    Invalid(
        "schedule-to-hour-25",
        "AIFactoryModule",
        (("spec.energy.schedule", [{**SCHEDULE_DAY, "toHour": 25}]),),
        "spec.energy.schedule[0].toHour",
        "less than or equal to 24",
    ),
    Invalid(
        "utc-offset-15",
        "AIFactoryModule",
        (("spec.energy.utcOffsetHours", 15),),
        "spec.energy.utcOffsetHours",
        "less than or equal to 14",
    ),
    Invalid(
        "operator-country-unassigned",
        "AIFactoryModule",
        (("spec.security.operatorCountry", "UK"),),
        "spec.security.operatorCountry",
        "ISO 3166-1 alpha-2",
    ),
    Invalid(
        "signal-csv-without-series",
        "AIFactoryModule",
        (("spec.energy.signal", {"provider": "CSV", "zone": "DE"}),),
        "spec.energy.signal",
        "energy.signal.csv must be set when provider is CSV, and only then",
    ),
    Invalid(
        "signal-electricitymaps-without-secret",
        "AIFactoryModule",
        (("spec.energy.signal", {"provider": "ElectricityMaps", "zone": "IS"}),),
        "spec.energy.signal",
        "energy.signal.credentialsSecretRef must be set for ElectricityMaps and WattTime",
    ),
    Invalid(
        "signal-watttime-emission-factor-type",
        "AIFactoryModule",
        (("spec.energy.signal", {**WATTTIME, "emissionFactorType": "lifecycle"}),),
        "spec.energy.signal",
        "energy.signal.emissionFactorType applies to ElectricityMaps and CSV only",
    ),
    Invalid(
        "signal-national-grid-outside-gb",
        "AIFactoryModule",
        (("spec.energy.signal", {"provider": "NationalGridESO", "zone": "IE"}),),
        "spec.energy.signal",
        "energy.signal.zone must be GB for NationalGridESO",
    ),
    Invalid(
        "signal-unknown-provider",
        "AIFactoryModule",
        (("spec.energy.signal", {"provider": "Ember", "zone": "IS"}),),
        "spec.energy.signal.provider",
        "Unsupported value",
        offline="'ElectricityMaps'",
    ),
    Invalid(
        "signal-csv-two-sources",
        "AIFactoryModule",
        (
            (
                "spec.energy.signal",
                {
                    "provider": "CSV",
                    "zone": "IS",
                    "csv": {
                        "path": "/data/ci.csv",
                        "configMapKeyRef": {"namespace": "ns", "name": "ci", "key": "ci.csv"},
                    },
                },
            ),
        ),
        "spec.energy.signal.csv",
        "energy.signal.csv must set exactly one of configMapKeyRef or path",
    ),
    Invalid(
        "signal-url-not-http",
        "AIFactoryModule",
        (("spec.energy.signal", {**WATTTIME, "url": "ftp://mirror.example"}),),
        "spec.energy.signal.url",
        "energy.signal.url must start with http:// or https://",
    ),
    # InferenceDeployment
    Invalid(
        "min-above-max",
        "InferenceDeployment",
        (("spec.replicas", {"min": 5, "max": 2}),),
        "spec.replicas.min",
        "replicas.min must be less than or equal to replicas.max",
    ),
    Invalid(
        "fixed-and-min-max",
        "InferenceDeployment",
        (("spec.replicas", {"fixed": 3, "min": 1, "max": 4}),),
        "spec.replicas",
        "set either fixed or min/max, not both",
    ),
    Invalid(
        "headroom-negative",
        "InferenceDeployment",
        (("spec.demand.headroom", -1),),
        "spec.demand.headroom",
        "greater than or equal to 0",
    ),
    Invalid(
        "min-renewable-share-1.5",
        "InferenceDeployment",
        (("spec.energy.minRenewableShare", 1.5),),
        "spec.energy.minRenewableShare",
        "less than or equal to 1",
    ),
    Invalid(
        "negative-carbon-weight",
        "InferenceDeployment",
        (("spec.objective.carbonWeight", -0.5),),
        "spec.objective.carbonWeight",
        "greater than or equal to 0",
    ),
    Invalid(
        "duplicate-region",
        "InferenceDeployment",
        (("spec.demand.regions", [REGION, REGION]),),
        "spec.demand.regions",
        "demand.regions[].name must be unique",
        server_alternatives=("Duplicate value", "duplicate entries for key"),
    ),
    Invalid(
        "region-country-uk",
        "InferenceDeployment",
        (("spec.demand.regions", [{**REGION, "country": "UK"}]),),
        "spec.demand.regions[0].country",
        "ISO 3166-1 alpha-2",
    ),
    Invalid(
        "demand-without-throughput",
        "InferenceDeployment",
        (("spec.throughputPerReplica", DELETE),),
        "spec",
        "throughputPerReplica is required when demand.regions is set",
    ),
    Invalid(
        "prometheus-url-without-scheme",
        "InferenceDeployment",
        (("spec.demand.prometheus", {**PROMETHEUS, "url": "prometheus.monitoring:9090"}),),
        "spec.demand.prometheus.url",
        "demand.prometheus.url must start with http:// or https://",
    ),
    Invalid(
        "prometheus-empty-query",
        "InferenceDeployment",
        (("spec.demand.prometheus", {**PROMETHEUS, "query": ""}),),
        "spec.demand.prometheus.query",
        "at least 1 ch",
    ),
    Invalid(
        "prometheus-without-regions",
        "InferenceDeployment",
        (("spec.demand.regions", DELETE), ("spec.demand.prometheus", PROMETHEUS)),
        "spec.demand.prometheus",
        "demand.prometheus needs demand.regions",
    ),
    Invalid(
        "unknown-classification",
        "InferenceDeployment",
        (("spec.dataClassification", "secret"),),
        "spec.dataClassification",
        "Unsupported value",
        offline="'restricted'",
    ),
    Invalid(
        "zero-gpus-per-replica",
        "InferenceDeployment",
        (("spec.resources.gpusPerReplica", 0),),
        "spec.resources.gpusPerReplica",
        "greater than or equal to 1",
    ),
    # SovereigntyPolicy
    Invalid(
        "unknown-enforcement",
        "SovereigntyPolicy",
        (("spec.enforcement", "Warn"),),
        "spec.enforcement",
        "Unsupported value",
        offline="'Enforce' or 'Audit'",
    ),
    Invalid(
        "unknown-jurisdiction",
        "SovereigntyPolicy",
        (("spec.allowedJurisdictions", ["EU", "EUROPE"]),),
        "spec.allowedJurisdictions[1]",
        "jurisdiction group (EU, EEA, FIVE_EYES)",
    ),
    Invalid(
        "unknown-data-residency",
        "SovereigntyPolicy",
        (("spec.dataResidency", "Strict"),),
        "spec.dataResidency",
        "Unsupported value",
        offline="'SameJurisdictionAsDemand'",
    ),
    Invalid(
        "selector-in-without-values",
        "SovereigntyPolicy",
        (
            (
                "spec.namespaceSelector",
                {"matchExpressions": [{"key": "aifactory.dev/residency", "operator": "In"}]},
            ),
        ),
        "spec.namespaceSelector.matchExpressions[0]",
        "values must be non-empty for In and NotIn",
    ),
)


def k8s_path(loc: tuple[str | int, ...]) -> str:
    """A pydantic error location in kubectl's notation: ('spec', 'gpus', 0) -> spec.gpus[0]."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out
