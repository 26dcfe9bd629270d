"""HTTPRoutes per member cluster and the routing JSON: what routers consume."""

from __future__ import annotations

from aifactory.api import InferenceRouter
from aifactory.api.router import InferenceRouterStatus
from aifactory.routers.export import (
    DIGEST_ANNOTATION,
    ROUTER_LABEL,
    http_routes,
    parent_ref,
    routing_configmap,
    routing_document,
)

ROUTER = InferenceRouter.model_validate(
    {
        "metadata": {"name": "assistant", "namespace": "chat", "uid": "u-1", "generation": 2},
        "spec": {
            "demand": {
                "regions": [
                    {
                        "name": "eu-west",
                        "country": "IE",
                        "latitude": 53.35,
                        "longitude": -6.26,
                        "requestsPerSecond": 100,
                    }
                ]
            },
            "tiers": [
                {"deployment": "chat-small", "share": 0.8},
                {"deployment": "chat-large", "share": 0.2},
            ],
        },
    }
)
CLUSTERS = {"paris": "secret:p", "frankfurt": "hub", "oslo": "hub", "reykjavik": "secret:r"}


def test_one_route_per_cluster_one_rule_per_tier_weighted_by_ready_replicas() -> None:
    routes = http_routes(
        ROUTER,
        [
            ("chat-small", {"paris": 3, "frankfurt": 1, "oslo": 2}),
            ("chat-large", {"oslo": 4, "reykjavik": 0}),  # nothing Ready on reykjavik yet
        ],
        CLUSTERS,
        header="X-AIFactory-Tier",
    )
    assert set(routes) == {"secret:p", "hub"}
    hub = routes["hub"]
    assert hub["apiVersion"] == "gateway.networking.k8s.io/v1" and hub["kind"] == "HTTPRoute"
    assert hub["metadata"]["name"] == "assistant" and hub["metadata"]["namespace"] == "chat"
    assert hub["metadata"]["labels"][ROUTER_LABEL] == "assistant"
    assert "parentRefs" not in hub["spec"]
    small, large = hub["spec"]["rules"]
    assert small["name"] == "chat-small"
    assert small["matches"] == [
        {"headers": [{"type": "Exact", "name": "X-AIFactory-Tier", "value": "chat-small"}]}
    ]
    assert [(b["name"], b["port"], b["weight"]) for b in small["backendRefs"]] == [
        ("chat-small-frankfurt", 80, 1),
        ("chat-small-oslo", 80, 2),
    ]
    assert [(b["name"], b["weight"]) for b in large["backendRefs"]] == [("chat-large-oslo", 4)]
    assert [r["name"] for r in routes["secret:p"]["spec"]["rules"]] == ["chat-small"]


def test_digest_changes_with_weights_only() -> None:
    def route(n: int) -> dict[str, object]:
        return http_routes(ROUTER, [("chat-small", {"paris": n})], CLUSTERS, header="X-T")[
            "secret:p"
        ]

    a, b, c = route(2), route(2), route(3)
    digest = DIGEST_ANNOTATION
    assert a["metadata"]["annotations"][digest] == b["metadata"]["annotations"][digest]  # type: ignore[index]
    assert a["metadata"]["annotations"][digest] != c["metadata"]["annotations"][digest]  # type: ignore[index]


def test_parent_ref_setting() -> None:
    assert parent_ref("") is None
    assert parent_ref("edge") == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "edge",
    }
    assert parent_ref("infra/edge")["namespace"] == "infra"  # type: ignore[index]
    routes = http_routes(
        ROUTER, [("chat-small", {"paris": 1})], CLUSTERS, header="X-T", gateway="infra/edge"
    )
    assert routes["secret:p"]["spec"]["parentRefs"][0]["name"] == "edge"


def test_routing_document_and_configmap() -> None:
    status = InferenceRouterStatus.model_validate(
        {
            "shares": {"chat-small": 0.8, "chat-large": 0.2},
            "routing": [
                {
                    "region": "eu-west",
                    "requestsPerSecond": 100,
                    "tiers": [
                        {
                            "deployment": "chat-small",
                            "share": 0.8,
                            "requestsPerSecond": 80,
                            "latencyMs": 13.2,
                            "modules": [{"module": "paris", "weight": 1.0}],
                        }
                    ],
                }
            ],
        }
    )
    doc = routing_document(ROUTER, status, {"paris": "paris"}, "X-AIFactory-Tier")
    assert doc["router"] == "chat/assistant" and doc["header"] == "X-AIFactory-Tier"
    target = doc["regions"][0]["tiers"][0]["targets"][0]
    assert target == {
        "module": "paris",
        "weight": 1.0,
        "cluster": "paris",
        "service": "chat-small-paris.chat.svc",
    }
    cm = routing_configmap(ROUTER, doc)
    assert cm["metadata"]["name"] == "assistant-routing"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert '"router": "chat/assistant"' in cm["data"]["routing.json"]
