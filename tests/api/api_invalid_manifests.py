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
        "InferenceRouter": "cascade.yaml",
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
    #: The field as the apiserver names it when that differs: server-side apply names items of
    #: list-maps by key, e.g. spec.demand.regions[name="eu-west"].country.
    server_field: str | None = None

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

#: A module file as a Norwegian user writes it first: `country: NO` is false in YAML 1.1.
UNQUOTED_NORWAY = """\
apiVersion: aifactory.dev/v1alpha1
kind: AIFactoryModule
metadata:
  name: oslo
spec:
  location: {country: NO, region: NO-03, latitude: 59.91, longitude: 10.75}
  energy:
    sources: [{type: hydro, share: 1}]
    carbonIntensity: 30
    powerBudgetKW: 50
  capacity:
    gpus: [{model: H100, count: 32, memoryGiB: 80, powerW: 700}]
  cluster: {nodeSelector: {aifactory.dev/module: oslo}}
"""


H100 = {"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700}
REGION = {
    "name": "eu-west",
    "country": "IE",
    "latitude": 53.35,
    "longitude": -6.26,
    "requestsPerSecond": 10,
}
SCHEDULE_DAY = {"fromHour": 8, "toHour": 18, "carbonIntensity": 40, "renewableShare": 0.9}
SECRET_SOURCE = {"secretKeyRef": {"name": "hf-token", "key": "token"}}
POD_NAME_SOURCE = {"fieldRef": {"fieldPath": "metadata.name"}}
WATTTIME = {
    "provider": "WattTime",
    "zone": "CAISO_NORTH",
    "credentialsSecretRef": {"namespace": "aifactory-system", "name": "watttime"},
}
PROMETHEUS = {
    "url": "http://prometheus.monitoring:9090",
    "query": "sum by (region) (rate(http_requests_total[1m]))",
}

SHARE_SOURCE = {
    "prometheus": {
        "url": "http://prometheus.monitoring:9090",
        "query": "sum(rate(escalations_total[5m])) / sum(rate(requests_total[5m]))",
    }
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
        "country-unquoted-no",  # `country: NO` in YAML 1.1, which kubectl speaks, is false
        "AIFactoryModule",
        (("spec.location.country", False),),
        "spec.location.country",
        "expected string, got &value.valueUnstructured{Value:false}",
        offline="Input should be a valid string",
    ),
    Invalid(
        "region-not-iso-3166-2",  # what the samples said for Oslo before: Oslo is NO-03
        "AIFactoryModule",
        (("spec.location.country", "NO"), ("spec.location.region", "NO-1")),
        "spec.location.region",
        "ISO 3166-2 subdivision code of location.country",
    ),
    Invalid(
        "region-of-another-country",
        "AIFactoryModule",
        (("spec.location.region", "NO-03"),),
        "spec.location.region",
        "ISO 3166-2 subdivision code of location.country",
        offline="it is Oslo in NO",
    ),
    Invalid(
        "region-lowercase",
        "AIFactoryModule",
        (("spec.location.region", "is-1"),),
        "spec.location.region",
        "ISO 3166-2 subdivision code of location.country",
    ),
    Invalid(
        "carbon-intensity-5000",
        "AIFactoryModule",
        (("spec.energy.carbonIntensity", 5000),),
        "spec.energy.carbonIntensity",
        "less than or equal to 2000",
    ),
    Invalid(
        "power-budget-1e300",
        "AIFactoryModule",
        (("spec.energy.powerBudgetKW", 1e300),),
        "spec.energy.powerBudgetKW",
        "less than or equal to 1e+06",
        offline="less than or equal to 1000000",
    ),
    Invalid(
        "pue-50",
        "AIFactoryModule",
        (("spec.energy.pue", 50),),
        "spec.energy.pue",
        "less than or equal to 5",
    ),
    Invalid(
        "schedule-carbon-1e300",
        "AIFactoryModule",
        (("spec.energy.schedule", [{**SCHEDULE_DAY, "carbonIntensity": 1e300}]),),
        "spec.energy.schedule[0].carbonIntensity",
        "less than or equal to 2000",
    ),
    Invalid(
        "gpu-count-1e12",
        "AIFactoryModule",
        (("spec.capacity.gpus[0].count", 10**12),),
        "spec.capacity.gpus[0].count",
        "less than or equal to 100000",
    ),
    Invalid(
        "gpu-memory-1e6",
        "AIFactoryModule",
        (("spec.capacity.gpus[0].memoryGiB", 10**6),),
        "spec.capacity.gpus[0].memoryGiB",
        "less than or equal to 4096",
    ),
    Invalid(
        "gpu-power-1e7",
        "AIFactoryModule",
        (("spec.capacity.gpus[0].powerW", 1e7),),
        "spec.capacity.gpus[0].powerW",
        "less than or equal to 10000",
    ),
    Invalid(
        "gpu-model-empty",
        "AIFactoryModule",
        (("spec.capacity.gpus", [{**H100, "model": ""}]),),
        "spec.capacity.gpus[0].model",
        "at least 1 ch",
    ),
    Invalid(
        "certifications-duplicate",
        "AIFactoryModule",
        (("spec.security.certifications", ["ISO27001", "SOC2", "ISO27001"]),),
        "spec.security.certifications",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="security.certifications must be unique; 'ISO27001' appears more than once",
    ),
    Invalid(
        "certification-empty",
        "AIFactoryModule",
        (("spec.security.certifications", [""]),),
        "spec.security.certifications[0]",
        "at least 1 ch",
    ),
    Invalid(
        "jurisdictions-duplicate",
        "AIFactoryModule",
        (("spec.location.jurisdictions", ["EEA", "EEA"]),),
        "spec.location.jurisdictions",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="location.jurisdictions must be unique",
    ),
    Invalid(
        "node-selector-invalid-key",
        "AIFactoryModule",
        (("spec.cluster", {"nodeSelector": {"aifactory.dev/module name": "reykjavik"}}),),
        "spec.cluster.nodeSelector",
        "every key must be a label key",
    ),
    Invalid(
        "node-selector-invalid-value",
        "AIFactoryModule",
        (("spec.cluster", {"nodeSelector": {"aifactory.dev/module": "reykjavik!"}}),),
        "spec.cluster.nodeSelector",
        "must be a label value",
    ),
    Invalid(
        "secret-ref-empty-name",
        "AIFactoryModule",
        (("spec.cluster.kubeconfigSecretRef.name", ""),),
        "spec.cluster.kubeconfigSecretRef.name",
        "at least 1 ch",
        offline="must be an object name",
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
        "throughput-1e-300",  # stored once, then every handler failed on the replica count
        "InferenceDeployment",
        (("spec.throughputPerReplica", 1e-300),),
        "spec.throughputPerReplica",
        "greater than or equal to 0.01",
    ),
    Invalid(
        "throughput-zero",  # an integer 0 passes `minimum: 0.01` in OpenAPI; a CEL rule stops it
        "InferenceDeployment",
        (("spec.throughputPerReplica", 0),),
        "spec.throughputPerReplica",
        "greater than or equal to 0.01",
    ),
    Invalid(
        "throughput-1e300",
        "InferenceDeployment",
        (("spec.throughputPerReplica", 1e300),),
        "spec.throughputPerReplica",
        "less than or equal to 1e+06",
        offline="less than or equal to 1000000",
    ),
    Invalid(
        "requests-per-second-1e300",  # overflowed int in ceil(rps * (1 + headroom) / throughput)
        "InferenceDeployment",
        (("spec.demand.regions", [{**REGION, "requestsPerSecond": 1e300}]),),
        "spec.demand.regions[0].requestsPerSecond",
        "less than or equal to 1e+06",
        offline="less than or equal to 1000000",
    ),
    Invalid(
        "headroom-1000",
        "InferenceDeployment",
        (("spec.demand.headroom", 1000),),
        "spec.demand.headroom",
        "less than or equal to 10",
    ),
    Invalid(
        "replicas-max-1e12",
        "InferenceDeployment",
        (("spec.replicas", {"min": 1, "max": 10**12}),),
        "spec.replicas.max",
        "less than or equal to 10000",
    ),
    Invalid(
        "replicas-fixed-100000",
        "InferenceDeployment",
        (("spec.replicas", {"fixed": 100_000}),),
        "spec.replicas.fixed",
        "less than or equal to 10000",
    ),
    Invalid(
        "gpus-per-replica-1000",
        "InferenceDeployment",
        (("spec.resources.gpusPerReplica", 1000),),
        "spec.resources.gpusPerReplica",
        "less than or equal to 64",
    ),
    Invalid(
        "min-gpu-memory-1e6",
        "InferenceDeployment",
        (("spec.resources.minGpuMemoryGiB", 10**6),),
        "spec.resources.minGpuMemoryGiB",
        "less than or equal to 4096",
    ),
    Invalid(
        "max-latency-zero",
        "InferenceDeployment",
        (("spec.slo.maxLatencyMs", 0),),
        "spec.slo.maxLatencyMs",
        "greater than or equal to 0.1",
    ),
    Invalid(
        "min-modules-100000",
        "InferenceDeployment",
        (("spec.slo.minModules", 100_000),),
        "spec.slo.minModules",
        "less than or equal to 1000",
    ),
    Invalid(
        "latency-weight-1e300",
        "InferenceDeployment",
        (("spec.objective.latencyWeight", 1e300),),
        "spec.objective.latencyWeight",
        "less than or equal to 1000",
    ),
    Invalid(
        "max-carbon-intensity-1e9",
        "InferenceDeployment",
        (("spec.energy.maxCarbonIntensity", 1e9),),
        "spec.energy.maxCarbonIntensity",
        "less than or equal to 2000",
    ),
    Invalid(
        "port-0",
        "InferenceDeployment",
        (("spec.model.port", 0),),
        "spec.model.port",
        "greater than or equal to 1",
    ),
    Invalid(
        "image-with-space",
        "InferenceDeployment",
        (("spec.model.image", "registry.example/serve 1.2"),),
        "spec.model.image",
        "model.image must not contain whitespace",
    ),
    Invalid(
        "model-name-not-a-label-value",
        "InferenceDeployment",
        (("spec.model.name", "eu assistant"),),
        "spec.model.name",
        "must be a label value",
    ),
    Invalid(
        "args-300",
        "InferenceDeployment",
        (("spec.model.args", ["-v"] * 300),),
        "spec.model.args",
        "at most 256 items",
    ),
    Invalid(
        "env-name-with-equals",  # accepted before, then every member answered 422
        "InferenceDeployment",
        (("spec.model.env", [{"name": "MAX_BATCH=SIZE", "value": "32"}]),),
        "spec.model.env[0].name",
        "printable ASCII characters other than '='",
    ),
    Invalid(
        "env-name-empty",
        "InferenceDeployment",
        (("spec.model.env", [{"name": "", "value": "32"}]),),
        "spec.model.env[0].name",
        "at least 1 ch",
    ),
    Invalid(
        "env-value-and-value-from",
        "InferenceDeployment",
        (("spec.model.env", [{"name": "TOKEN", "value": "x", "valueFrom": SECRET_SOURCE}]),),
        "spec.model.env[0].valueFrom",
        "model.env[].valueFrom may not be set when value is not empty",
    ),
    Invalid(
        "env-value-from-two-sources",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [{"name": "TOKEN", "valueFrom": {**SECRET_SOURCE, **POD_NAME_SOURCE}}],
            ),
        ),
        "spec.model.env[0].valueFrom",
        "must set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef",
    ),
    Invalid(
        "env-value-from-empty",
        "InferenceDeployment",
        (("spec.model.env", [{"name": "TOKEN", "valueFrom": {}}]),),
        "spec.model.env[0].valueFrom",
        "must set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef",
    ),
    Invalid(
        "env-value-from-unknown-source",
        "InferenceDeployment",
        (("spec.model.env", [{"name": "TOKEN", "valueFrom": {"vaultRef": {"path": "x"}}}]),),
        "spec.model.env[0].valueFrom.vaultRef",
        "field not declared in schema",
        offline="Extra inputs are not permitted",
        server_field='spec.model.env[name="TOKEN"].valueFrom.vaultRef',
    ),
    Invalid(
        "env-secret-key-with-slash",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "a/b"}}}],
            ),
        ),
        "spec.model.env[0].valueFrom.secretKeyRef.key",
        "must be a ConfigMap or Secret key",
    ),
    Invalid(
        "env-config-map-name-invalid",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "Cfg", "key": "m"}}}],
            ),
        ),
        "spec.model.env[0].valueFrom.configMapKeyRef.name",
        "must be an object name",
    ),
    Invalid(
        "env-field-path-unsupported",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [{"name": "IMAGE", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}],
            ),
        ),
        "spec.model.env[0].valueFrom.fieldRef.fieldPath",
        "fieldRef.fieldPath must be one of",
    ),
    Invalid(
        "env-cpu-divisor-1Mi",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [
                    {
                        "name": "CPUS",
                        "valueFrom": {
                            "resourceFieldRef": {"resource": "limits.cpu", "divisor": "1Mi"}
                        },
                    }
                ],
            ),
        ),
        "spec.model.env[0].valueFrom.resourceFieldRef",
        "resourceFieldRef.divisor must be 1m or 1 for cpu",
    ),
    Invalid(
        "env-resource-unsupported",
        "InferenceDeployment",
        (
            (
                "spec.model.env",
                [{"name": "GPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}],
            ),
        ),
        "spec.model.env[0].valueFrom.resourceFieldRef.resource",
        "resourceFieldRef.resource must be one of",
    ),
    Invalid(
        "gpu-models-duplicate",
        "InferenceDeployment",
        (("spec.resources.gpuModels", ["H100", "A100", "H100"]),),
        "spec.resources.gpuModels",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="resources.gpuModels must be unique; 'H100' appears more than once",
    ),
    Invalid(
        "gpu-models-empty-item",
        "InferenceDeployment",
        (("spec.resources.gpuModels", ["H100", ""]),),
        "spec.resources.gpuModels[1]",
        "at least 1 ch",
    ),
    Invalid(
        "placement-modules-duplicate",
        "InferenceDeployment",
        (("spec.placement.modules", ["oslo", "oslo"]),),
        "spec.placement.modules",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="placement.modules must be unique",
    ),
    Invalid(
        "placement-modules-empty-item",
        "InferenceDeployment",
        (("spec.placement.modules", [""]),),
        "spec.placement.modules[0]",
        "at least 1 ch",
        offline="must be an object name",
    ),
    Invalid(
        "placement-module-not-an-object-name",
        "InferenceDeployment",
        (("spec.placement.modules", ["Oslo"]),),
        "spec.placement.modules[0]",
        "must be an object name",
    ),
    Invalid(
        "placement-selector-invalid-key",
        "InferenceDeployment",
        (
            (
                "spec.placement.moduleSelector",
                {"matchExpressions": [{"key": "aifactory.dev/ tier", "operator": "Exists"}]},
            ),
        ),
        "spec.placement.moduleSelector.matchExpressions[0].key",
        "must be a label key",
    ),
    Invalid(
        "sovereignty-policies-duplicate",
        "InferenceDeployment",
        (("spec.sovereigntyPolicies", ["eu-restricted-data", "eu-restricted-data"]),),
        "spec.sovereigntyPolicies",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="sovereigntyPolicies must be unique",
    ),
    Invalid(
        "allowed-sources-duplicate",
        "InferenceDeployment",
        (("spec.energy.allowedSources", ["hydro", "wind", "hydro"]),),
        "spec.energy.allowedSources",
        "Duplicate value",
        server_alternatives=("duplicate entries for key",),
        offline="energy.allowedSources must be unique",
    ),
    Invalid(
        "region-country-unquoted-no",
        "InferenceDeployment",
        (("spec.demand.regions", [{**REGION, "country": False}]),),
        "spec.demand.regions[0].country",
        "expected string, got &value.valueUnstructured{Value:false}",
        offline="Input should be a valid string",
        server_field='spec.demand.regions[name="eu-west"].country',
    ),
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
        "selector-invalid-match-labels-key",
        "SovereigntyPolicy",
        (("spec.namespaceSelector", {"matchLabels": {"aifactory.dev/": "eu"}}),),
        "spec.namespaceSelector.matchLabels",
        "every key must be a label key",
    ),
    Invalid(
        "selector-invalid-match-labels-value",
        "SovereigntyPolicy",
        (("spec.namespaceSelector", {"matchLabels": {"aifactory.dev/residency": "eu west"}}),),
        "spec.namespaceSelector.matchLabels",
        "must be a label value",
    ),
    Invalid(
        "selector-invalid-expression-key",
        "SovereigntyPolicy",
        (
            (
                "spec.deploymentSelector",
                {"matchExpressions": [{"key": "-tier", "operator": "Exists"}]},
            ),
        ),
        "spec.deploymentSelector.matchExpressions[0].key",
        "must be a label key",
    ),
    Invalid(
        "selector-invalid-expression-value",
        "SovereigntyPolicy",
        (
            (
                "spec.namespaceSelector",
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a/b"]}]},
            ),
        ),
        "spec.namespaceSelector.matchExpressions[0].values[0]",
        "must be a label value",
    ),
    Invalid(
        "selector-exists-with-values",
        "SovereigntyPolicy",
        (
            (
                "spec.namespaceSelector",
                {"matchExpressions": [{"key": "tier", "operator": "Exists", "values": ["a"]}]},
            ),
        ),
        "spec.namespaceSelector.matchExpressions[0]",
        "empty for Exists and DoesNotExist",
    ),
    Invalid(
        "selector-unknown-operator",
        "SovereigntyPolicy",
        (
            (
                "spec.namespaceSelector",
                {"matchExpressions": [{"key": "tier", "operator": "Equals", "values": ["a"]}]},
            ),
        ),
        "spec.namespaceSelector.matchExpressions[0].operator",
        "Unsupported value",
        offline="'DoesNotExist'",
    ),
    *(
        Invalid(
            f"{field}-duplicate",
            "SovereigntyPolicy",
            ((f"spec.{field}", [value, value]),),
            f"spec.{field}",
            "Duplicate value",
            server_alternatives=("duplicate entries for key",),
            offline=f"{field} must be unique; {value!r} appears more than once",
        )
        for field, value in (
            ("allowedJurisdictions", "EU"),
            ("deniedCountries", "RU"),
            ("operatorCountries", "NO"),
            ("deniedOperatorCountries", "FIVE_EYES"),
            ("dataClassifications", "restricted"),
            ("requiredCertifications", "ISO27001"),
        )
    ),
    Invalid(
        "required-certification-empty",
        "SovereigntyPolicy",
        (("spec.requiredCertifications", ["ISO27001", ""]),),
        "spec.requiredCertifications[1]",
        "at least 1 ch",
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
    # InferenceRouter
    Invalid(
        "router-shares-do-not-sum-to-one",
        "InferenceRouter",
        (("spec.tiers[1].share", 0.3),),
        "spec.tiers",
        "tiers[].share must sum to 1",
    ),
    Invalid(
        "router-share-above-one",
        "InferenceRouter",
        (("spec.tiers[0].share", 1.5), ("spec.tiers[1].share", -0.5)),
        "spec.tiers[0].share",
        "less than or equal to 1",
    ),
    Invalid(
        "router-share-negative",
        "InferenceRouter",
        (("spec.tiers[0].share", 1.2), ("spec.tiers[1].share", -0.2)),
        "spec.tiers[1].share",
        "greater than or equal to 0",
    ),
    Invalid(
        "router-every-share-live",
        "InferenceRouter",
        (("spec.tiers[0].shareFrom", SHARE_SOURCE), ("spec.tiers[1].shareFrom", SHARE_SOURCE)),
        "spec.tiers",
        "at least one tier must have a fixed share",
    ),
    Invalid(
        "router-tier-duplicate",
        "InferenceRouter",
        (("spec.tiers[1].deployment", "chat-small"),),
        "spec.tiers",
        "Duplicate value",
        server_alternatives=("duplicate entries for key", "must be unique"),
        offline="tiers[].deployment must be unique",
    ),
    Invalid(
        "router-no-tiers",
        "InferenceRouter",
        (("spec.tiers", []),),
        "spec.tiers",
        "should have at least 1 items",
        offline="at least 1 item",
    ),
    Invalid(
        "router-without-regions",
        "InferenceRouter",
        (("spec.demand.regions", []),),
        "spec.demand.regions",
        "a router needs at least one demand region",
    ),
    Invalid(
        "router-tier-name",
        "InferenceRouter",
        (("spec.tiers[0].deployment", "Chat_Small"),),
        "spec.tiers[0].deployment",
        "must be an object name",
    ),
    Invalid(
        "router-share-source-url",
        "InferenceRouter",
        (
            (
                "spec.tiers[1].shareFrom",
                {"prometheus": {**SHARE_SOURCE["prometheus"], "url": "prometheus:9090"}},
            ),
        ),
        "spec.tiers[1].shareFrom.prometheus.url",
        "shareFrom.prometheus.url must start with http:// or https://",
    ),
)


def k8s_path(loc: tuple[str | int, ...]) -> str:
    """A pydantic error location in kubectl's notation: ('spec', 'gpus', 0) -> spec.gpus[0]."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out
