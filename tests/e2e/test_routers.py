"""InferenceRouters on the local fleet: the sample cascade, a share change, HTTPRoutes, EU rules.

The operator places each tier with demand = router demand x share per region by the tier's own
rules, routes only to Ready replicas, and writes the routing to the router's status, a
ConfigMap, its HTTP endpoint and Gateway API HTTPRoutes in the members (which have the Gateway
API CRDs: hack/fleet installs the pinned standard channel; the hub has none).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack.fleet import HUB, Fleet, NodePool
from tests.e2e.helpers import (
    OperatorProcess,
    ServingSampler,
    apply_json,
    cluster_of,
    condition,
    ctl,
    get_json,
    is_ready,
    wait_for,
)

from aifactory.api.jurisdictions import tags_of
from aifactory.labels import MODULE_LABEL

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
CASCADE = [d for d in yaml.safe_load_all((REPO / "samples" / "cascade.yaml").read_text()) if d]
MODULES = {
    d["metadata"]["name"]: d
    for d in yaml.safe_load_all((REPO / "samples" / "modules.yaml").read_text())
    if d
}
NS = "chat"
HEADER = "X-AIFactory-Tier"


def router(kubectl: Any, namespace: str = NS, name: str = "assistant") -> dict[str, Any]:
    return dict(get_json(kubectl, "infr", "-n", namespace, name))


def router_ready(kubectl: Any, namespace: str = NS, name: str = "assistant") -> Any:
    obj = router(kubectl, namespace, name)
    c = condition(obj, "Ready")
    gen = obj["metadata"].get("generation")
    ok = c and c["status"] == "True" and obj.get("status", {}).get("observedGeneration") == gen
    return obj if ok else None


def routes_of(obj: dict[str, Any], tier: str) -> dict[str, dict[str, float]]:
    """region -> module -> weight of one tier, from a router's status."""
    out = {}
    for r in obj["status"]["routing"]:
        for t in r["tiers"]:
            if t["deployment"] == tier:
                out[r["region"]] = {m["module"]: m["weight"] for m in t["modules"]}
    return out


def ready_in_members(kubectl: Any, fleet: Fleet, namespace: str, tier: str) -> dict[str, int]:
    """module -> Ready replicas of a tier, as the member Deployments report them."""
    out: dict[str, int] = {}
    for cluster in fleet.clusters:
        items = get_json(
            kubectl,
            "deployments",
            "-n",
            namespace,
            "-l",
            f"aifactory.dev/inference-deployment={tier}",
            cluster=cluster,
        )["items"]
        for d in items:
            module = d["metadata"]["labels"]["aifactory.dev/placed-on"]
            out[module] = int(d.get("status", {}).get("readyReplicas") or 0)
    return out


@pytest.fixture(scope="module")
def cascade(operator: OperatorProcess, kubectl: Any) -> Iterator[dict[str, Any]]:
    """samples/cascade.yaml applied and routed; removed after the module's tests."""
    apply_json(kubectl, *CASCADE)
    try:
        yield wait_for("the sample router Ready", lambda: router_ready(kubectl), timeout=180)
    finally:
        kubectl("delete", "infr", "-n", NS, "--all", "--timeout=60s", check=False)
        kubectl("delete", "infd", "-n", NS, "--all", "--timeout=90s", check=False, timeout=120)


def test_sample_cascade_small_tier_near_every_region_large_tier_on_green_modules(
    cascade: dict[str, Any], kubectl: Any, operator: OperatorProcess, fleet: Fleet
) -> None:
    status = cascade["status"]
    assert status["shares"] == {"chat-small": 0.8, "chat-large": 0.2}
    small = routes_of(cascade, "chat-small")
    regions = {r["name"] for r in CASCADE[-1]["spec"]["demand"]["regions"]}
    assert set(small) == regions and all(small.values())
    for row in status["routing"]:
        for t in row["tiers"]:
            if t["deployment"] == "chat-small":  # near: within its 20 ms SLO
                assert t["latencyMs"] <= 20, row
    large = routes_of(cascade, "chat-large")
    used = {m for weights in large.values() for m in weights}
    assert used and all(
        MODULES[m]["metadata"]["labels"]["aifactory.dev/tier"] == "green" for m in used
    ), used
    for name in ("chat-small", "chat-large"):
        infd = get_json(kubectl, "infd", "-n", NS, name)
        assert is_ready(infd)
        effective = infd["status"]["effectiveDemand"]
        assert effective["router"] == "assistant"
        assert "regions" not in infd["spec"]["demand"]  # the user's spec is not touched
        for m in {p["module"] for p in infd["status"]["placements"]}:
            if name == "chat-large":
                assert MODULES[m]["spec"]["energy"]["carbonIntensity"] <= 50, m
    assert get_json(kubectl, "infd", "-n", NS, "chat-small")["status"]["effectiveDemand"][
        "requestsPerSecond"
    ] == {"eu-west": 120, "eu-central": 160, "eu-north": 40, "us-south": 80}
    figures = status["blended"]
    assert figures["cascade"]["meanRttMs"] < figures["largestTier"]["meanRttMs"]
    # the same routing in the ConfigMap and at the operator's HTTP endpoint
    data = get_json(kubectl, "configmap", "-n", NS, "assistant-routing")["data"]
    doc = json.loads(data["routing.json"])
    port = operator.env["AIFACTORY_METRICS_PORT"]

    def served() -> Any:
        url = f"http://127.0.0.1:{port}/routing/{NS}/assistant"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)

    assert wait_for("the endpoint to serve the ConfigMap's routing", lambda: served() == doc)
    assert doc["header"] == HEADER
    assert {t["tier"] for r in doc["regions"] for t in r["tiers"]} == {"chat-small", "chat-large"}
    # explain shows the router's tiers
    out = ctl(fleet, "explain", "-n", NS, "infr/assistant")
    assert out.returncode == 0, out.stderr
    assert "chat-small" in out.stdout and "chat-large alone (what-if)" in out.stdout


def test_httproutes_in_members_carry_the_weights(
    cascade: dict[str, Any], kubectl: Any, fleet: Fleet
) -> None:
    """One HTTPRoute per member serving a tier, accepted by the real Gateway API schema, a
    header rule per tier with its Services weighted by Ready replicas; none in the hub."""
    assert "httproutes" not in kubectl("api-resources", "-o", "name").stdout
    ready = {t: ready_in_members(kubectl, fleet, NS, t) for t in ("chat-small", "chat-large")}
    for member in fleet.members:
        expected = {
            tier: {
                f"{tier}-{m}": n
                for m, n in by_module.items()
                if n > 0 and cluster_of(kubectl, m) == member
            }
            for tier, by_module in ready.items()
        }
        expected = {t: backends for t, backends in expected.items() if backends}

        def matches(member: str = member, expected: Any = expected) -> Any:
            items = get_json(kubectl, "httproutes", "-n", NS, cluster=member)["items"]
            if not expected:
                return not items
            if len(items) != 1:
                return False
            rules = {
                r["matches"][0]["headers"][0]["value"]: {
                    b["name"]: b["weight"] for b in r["backendRefs"]
                }
                for r in items[0]["spec"]["rules"]
            }
            return items[0] if rules == expected else False

        route = wait_for(f"the HTTPRoute of {member}", matches, timeout=60)
        if route is True:
            continue
        rule = route["spec"]["rules"][0]
        assert rule["matches"][0]["headers"][0]["name"] == HEADER
        assert all(b["kind"] == "Service" and b["port"] == 80 for b in rule["backendRefs"])
        # the stored object passed the CRD's schema and CEL: re-applying it is accepted too
        kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=routers-e2e",
            "-f",
            "-",
            input=json.dumps({k: route[k] for k in ("apiVersion", "kind", "metadata", "spec")}),
            cluster=member,
        )


def test_share_change_moves_replicas_make_before_break(
    cascade: dict[str, Any], kubectl: Any, fleet: Fleet
) -> None:
    before = {
        t: get_json(kubectl, "infd", "-n", NS, t)["status"]["replicas"]
        for t in ("chat-small", "chat-large")
    }
    assert before == {"chat-small": 10, "chat-large": 14}
    # 60/40: small eu-west 3 + eu-central 3 + eu-north 1 + us-south 2 = 9;
    # large 8 + 10 + 3 + 5 = 26
    after = {"chat-small": 9, "chat-large": 26}
    with (
        ServingSampler(fleet, NS, "chat-small") as small,
        ServingSampler(fleet, NS, "chat-large") as large,
    ):
        kubectl(
            "patch",
            "infr",
            "-n",
            NS,
            "assistant",
            "--type=json",
            "-p",
            json.dumps(
                [
                    {"op": "replace", "path": "/spec/tiers/0/share", "value": 0.6},
                    {"op": "replace", "path": "/spec/tiers/1/share", "value": 0.4},
                ]
            ),
        )

        def settled() -> Any:
            obj = router_ready(kubectl)
            if obj is None or obj["status"]["shares"] != {"chat-small": 0.6, "chat-large": 0.4}:
                return None
            rows = {t["deployment"]: t for t in obj["status"]["tiers"]}
            if any(rows[t].get("readyReplicas") != n for t, n in after.items()):
                return None
            return obj

        obj = wait_for("both tiers Ready at 60/40", settled, timeout=180)
    # make-before-break: neither tier ever served with fewer Ready replicas than it needed
    # before or needs now, whichever is less
    assert small.minimum >= min(before["chat-small"], after["chat-small"]), small.samples
    assert large.minimum >= min(before["chat-large"], after["chat-large"]), large.samples
    # what the users see catches up with the status: sampled once a second, the sampler may
    # have stopped just before the last replicas turned Ready
    wait_for(
        f"{after['chat-large']} chat-large replicas Ready in the members",
        lambda: large.ready_now() >= after["chat-large"],
        timeout=30,
    )
    for t, n in after.items():
        infd = get_json(kubectl, "infd", "-n", NS, t)
        assert infd["status"]["replicas"] == n
        assert infd["status"]["effectiveDemand"]["share"] == pytest.approx(
            0.6 if t == "chat-small" else 0.4
        )
    # routing follows Ready replicas: weights of each region are its modules' Ready shares
    large_ready = ready_in_members(kubectl, fleet, NS, "chat-large")
    for weights in routes_of(obj, "chat-large").values():
        assert all(large_ready.get(m, 0) > 0 for m in weights), (weights, large_ready)


def test_kstatus_reads_routers_current_and_a_missing_tier_failed(
    cascade: dict[str, Any], kubectl: Any, fleet: Fleet
) -> None:
    """GitOps tools (kstatus, as Flux uses it) read a routed router as Current and one whose
    tier does not exist as Failed (Stalled, reason TierNotFound), not a crash."""
    from tests.e2e.test_kstatus import kstatus

    assert kstatus(fleet, kubectl, "infr", "-n", NS)[f"InferenceRouter {NS}/assistant"][0] == (
        "Current"
    )
    orphan = json.loads(json.dumps(CASCADE[-1]))
    orphan["metadata"]["name"] = "orphan"
    orphan["spec"]["tiers"] = [{"deployment": "no-such-tier", "share": 1.0}]
    apply_json(kubectl, orphan)
    try:

        def stalled() -> Any:
            obj = router(kubectl, NS, "orphan")
            c = condition(obj, "Stalled")
            return obj if c and c["status"] == "True" else None

        obj = wait_for("the orphan router Stalled", stalled, timeout=60)
        assert condition(obj, "Stalled")["reason"] == "TierNotFound"
        assert "chat/no-such-tier does not exist" in condition(obj, "Ready")["message"]
        got = kstatus(fleet, kubectl, "infr", "-n", NS)
        assert got[f"InferenceRouter {NS}/orphan"][0] == "Failed", got
        assert got[f"InferenceRouter {NS}/assistant"][0] == "Current", got
    finally:
        kubectl("delete", "infr", "-n", NS, "orphan", "--ignore-not-found", check=False)


# ------------------------------------------------------------------ EU rules in every tier

EU_NS = "eu-chat"


def _eu_router(name: str, namespace: str, classification: str) -> list[dict[str, Any]]:
    """The sample cascade renamed into `namespace` with EU regions and a US one."""
    out = []
    for doc in CASCADE:
        if doc["kind"] == "Namespace":
            continue
        d = json.loads(json.dumps(doc))
        d["metadata"]["namespace"] = namespace
        if d["kind"] == "InferenceDeployment":
            d["metadata"]["name"] = f"{name}-{d['metadata']['name'].split('-')[1]}"
            d["spec"]["dataClassification"] = classification
        else:
            d["metadata"]["name"] = name
            d["spec"]["tiers"] = [
                {"deployment": f"{name}-small", "share": 0.8},
                {"deployment": f"{name}-large", "share": 0.2},
            ]
            d["spec"]["demand"]["regions"] = [
                r for r in d["spec"]["demand"]["regions"] if r["name"] != "us-south"
            ]
        out.append(d)
    return out


@pytest.fixture
def london(operator: OperatorProcess, kubectl: Any, fleet: Fleet) -> Iterator[str]:
    """A node-pool module outside the EU and EEA (GB) that is the best choice for European
    users otherwise: close, on hydro power at 10 gCO2e/kWh, with L4 and H100 GPUs."""
    for model in ("L4", "H100"):
        fleet.add_nodes(HUB, NodePool("london", model, nodes=1, gpus_per_node=8))
    module = {
        "apiVersion": "aifactory.dev/v1alpha1",
        "kind": "AIFactoryModule",
        "metadata": {"name": "london"},
        "spec": {
            "location": {
                "country": "GB",
                "region": "GB-LND",
                "latitude": 51.51,
                "longitude": -0.13,
            },
            "energy": {
                "sources": [{"type": "hydro", "share": 1.0}],
                "carbonIntensity": 10,
                "powerBudgetKW": 50,
                "pue": 1.1,
            },
            "capacity": {
                "gpus": [
                    {"model": "L4", "count": 8, "memoryGiB": 24, "powerW": 72},
                    {"model": "H100", "count": 8, "memoryGiB": 80, "powerW": 700},
                ]
            },
            "security": {"certifications": ["ISO27001"], "operatorCountry": "GB"},
            "cluster": {"nodeSelector": {MODULE_LABEL: "london"}},
        },
    }
    apply_json(kubectl, module)
    wait_for(
        "london Ready",
        lambda: (
            (condition(get_json(kubectl, "afm", "london"), "Ready") or {}).get("status") == "True"
        ),
        timeout=90,
    )
    try:
        yield "london"
    finally:
        for ns in (EU_NS, NS):
            for name in ("eu-router", "global-router"):
                kubectl("delete", "infr", "-n", ns, name, "--ignore-not-found", check=False)
            for tier in ("small", "large"):
                for name in ("eu-router", "global-router"):
                    kubectl(
                        "delete",
                        "infd",
                        "-n",
                        ns,
                        f"{name}-{tier}",
                        "--ignore-not-found",
                        "--timeout=90s",
                        check=False,
                        timeout=120,
                    )
        kubectl("delete", "afm", "london", "--ignore-not-found", check=False)
        kubectl("delete", "node", "-l", f"{MODULE_LABEL}=london", "--ignore-not-found", check=False)


def test_eu_restricted_router_never_routes_an_eu_region_outside_the_eu(
    london: str, kubectl: Any, fleet: Fleet
) -> None:
    apply_json(kubectl, CASCADE[0])  # the chat namespace
    # control: without the EU policy binding (internal data, global namespace) london is used
    apply_json(kubectl, *_eu_router("global-router", NS, "internal"))
    # restricted data in eu-chat: eu-restricted-data binds every tier (EU/EEA, residency)
    apply_json(kubectl, *_eu_router("eu-router", EU_NS, "restricted"))
    glob = wait_for(
        "the global router Ready", lambda: router_ready(kubectl, NS, "global-router"), timeout=180
    )
    eu = wait_for("the EU router Ready", lambda: router_ready(kubectl, EU_NS, "eu-router"), 180)
    used_globally = {
        m
        for t in ("global-router-small", "global-router-large")
        for w in routes_of(glob, t).values()
        for m in w
    }
    assert london in used_globally, used_globally  # the rule below is not vacuous
    countries = {n: d["spec"]["location"]["country"] for n, d in MODULES.items()}
    countries[london] = "GB"
    for tier in ("eu-router-small", "eu-router-large"):
        routes = routes_of(eu, tier)
        assert routes, tier
        for region, weights in routes.items():
            assert weights, (tier, region)
            for module in weights:
                tags = tags_of(countries[module], frozenset())
                assert tags & {"EU", "EEA"}, (tier, region, module)
        placed = {
            p["module"]
            for p in get_json(kubectl, "infd", "-n", EU_NS, tier)["status"]["placements"]
        }
        assert london not in placed and "dallas" not in placed, placed
    # and no member HTTPRoute of the EU router sends to a module outside the EU either
    for member in fleet.members:
        for route in get_json(kubectl, "httproutes", "-n", EU_NS, cluster=member)["items"]:
            for rule in route["spec"]["rules"]:
                for b in rule["backendRefs"]:
                    module = b["name"].rsplit("-", 1)[-1]
                    assert tags_of(countries[module], frozenset()) & {"EU", "EEA"}, b
