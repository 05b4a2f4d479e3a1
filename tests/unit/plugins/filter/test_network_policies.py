"""network_policies: the inventory's ceres_network_policy as NetworkPolicy manifests, every field checked first.

What the policies do to traffic is tested against the sandbox (tests/integration/test_network_policies.py, the
simulator enforcing them with cyclonus's engine); here, what is built and what is refused.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ceres.rollout.plugins.filter.network_policies import network_policies

GATEWAY = {"namespace": "istio-system", "pod_labels": {"app": "istio-ingressgateway"}}


def by_name(policies, namespace):
    return {p["metadata"]["name"]: p for p in policies if p["metadata"]["namespace"] == namespace}


ORDER = "rollout.ceres.io/apply-order"
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
GATEWAY_RULE = {
    "from": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}},
            "podSelector": {"matchLabels": {"app": "istio-ingressgateway"}},
        }
    ],
    "ports": [{"port": 8080, "protocol": "TCP"}],
}


def test_every_namespace_gets_its_base_allow_then_its_default_deny_in_apply_order():
    policies = network_policies(
        {"callers": [GATEWAY], "ports": [8080]}, namespaces=["shop", "admin"], labels={"a": "b"}
    )
    names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies]
    assert names == [
        ("shop", "ceres-allow"),
        ("admin", "ceres-allow"),
        ("shop", "ceres-default-deny"),
        ("admin", "ceres-default-deny"),
    ]
    assert [p["metadata"]["labels"] for p in policies] == [
        {"a": "b", ORDER: "3"},
        {"a": "b", ORDER: "3"},
        {"a": "b", ORDER: "4"},
        {"a": "b", ORDER: "4"},
    ]
    assert all(p["apiVersion"] == "networking.k8s.io/v1" for p in policies)
    deny = by_name(policies, "shop")["ceres-default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_the_base_allow_names_the_callers_dns_and_the_control_plane_with_their_ports():
    base = by_name(network_policies({"callers": [GATEWAY], "ports": [8080]}, namespaces=["shop"]), "shop")[
        "ceres-allow"
    ]
    spec = base["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [GATEWAY_RULE]
    assert spec["egress"][0] == DNS_RULE
    plane = spec["egress"][1]
    assert plane["ports"] == [{"port": 15012, "protocol": "TCP"}]
    assert plane["to"][0]["podSelector"] == {"matchLabels": {"app": "istiod"}}


def test_a_caller_with_its_own_ports_and_one_without_any():
    scraper = {"namespace": "monitoring", "pod_labels": {"app": "prometheus"}, "ports": [15090]}
    shop = by_name(network_policies({"callers": [GATEWAY, scraper]}, namespaces=["shop"]), "shop")
    rules = shop["ceres-allow"]["spec"]["ingress"]
    assert "ports" not in rules[0]  # no ports anywhere: any port
    assert rules[1]["ports"] == [{"port": 15090, "protocol": "TCP"}]


def test_the_callers_of_one_app_get_policies_that_keep_the_base_rules_and_land_first():
    settings = {
        "callers": [GATEWAY],
        "ports": [8080],
        "app_callers": [
            {
                "namespace": "critical",
                "app": "billing",
                "from": [
                    {"namespace": "critical", "pod_labels": {"app": "auth"}},
                    {"namespace": "batch", "pod_labels": {"app": "invoicer"}},
                ],
            }
        ],
    }
    policies = network_policies(settings, namespaces=["critical", "non-critical"])
    assert [p["metadata"]["labels"][ORDER] for p in policies] == ["1", "2", "3", "3", "4", "4"]
    critical = by_name(policies, "critical")
    ingress = critical["ceres-allow-callers-billing"]["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"app": "billing"}} and ingress["policyTypes"] == ["Ingress"]
    # the gateway stays allowed on billing's pods even where this policy is the only one selecting them
    assert ingress["ingress"][0] == GATEWAY_RULE
    assert [peer["podSelector"]["matchLabels"] for peer in ingress["ingress"][1]["from"]] == [
        {"app": "auth"},
        {"app": "invoicer"},
    ]
    egress = [p for name, p in critical.items() if name.startswith("ceres-allow-to-billing.critical-")]
    assert len(egress) == 1
    spec = egress[0]["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "auth"}} and spec["policyTypes"] == ["Egress"]
    assert spec["egress"][0] == DNS_RULE  # auth keeps DNS and istiod beside its new egress to billing
    assert spec["egress"][-1]["to"][0]["podSelector"] == {"matchLabels": {"app": "billing"}}
    assert spec["egress"][-1]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    # batch is not an app namespace: its egress is not this role's to open
    assert not [p for p in policies if p["metadata"]["namespace"] == "batch"]
    # a second run builds the same names (the digest is stable)
    assert [p["metadata"]["name"] for p in network_policies(settings, namespaces=["critical", "non-critical"])] == [
        p["metadata"]["name"] for p in policies
    ]


def test_one_app_named_twice_is_one_policy_with_each_rule_once():
    entry = {"namespace": "shop", "app": "cart", "from": [{"namespace": "shop", "pod_labels": {"app": "web"}}]}
    other = dict(entry, **{"from": [{"namespace": "shop", "pod_labels": {"app": "api"}}]})
    shop = by_name(network_policies({"callers": [GATEWAY], "app_callers": [entry, other]}, namespaces=["shop"]), "shop")
    rules = shop["ceres-allow-callers-cart"]["spec"]["ingress"]
    assert len(rules) == 3  # the gateway once, web, api


def test_egress_to_a_database_and_a_cidr():
    settings = {
        "egress": [
            {"namespace": "ceres-system", "pod_labels": {"app": "postgres-main"}, "ports": [5432]},
            {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"], "ports": [{"port": 443, "protocol": "TCP"}]},
        ]
    }
    rules = by_name(network_policies(settings, namespaces=["shop"]), "shop")["ceres-allow"]["spec"]["egress"]
    assert rules[2]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert rules[3] == {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"]}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }


def test_default_deny_false_builds_nothing():
    assert network_policies({"default_deny": False, "callers": [GATEWAY]}, namespaces=["shop"]) == []


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"calers": []}, "ceres_network_policy has unknown keys calers"),
        ({"default_deny": "yes"}, "ceres_network_policy.default_deny must be true or false"),
        ({"callers": [GATEWAY, {"namespace": "Istio_System"}]}, "ceres_network_policy.callers[1].namespace"),
        (
            {"callers": [{"namespace": "a", "pod_labels": {"app": "x y"}}]},
            "ceres_network_policy.callers[0].pod_labels.app",
        ),
        (
            {"callers": [{"namespace": "a", "pod_labels": ["app"]}]},
            "ceres_network_policy.callers[0].pod_labels must be",
        ),
        ({"ports": [8080, 70000]}, "ceres_network_policy.ports[1] must be a port number"),
        ({"ports": [{"port": 53, "protocol": "ICMP"}]}, "ceres_network_policy.ports[0].protocol"),
        ({"dns": {"namespace": "kube-system", "port": 53}}, "ceres_network_policy.dns has unknown keys port"),
        ({"egress": [{"cidr": "10.0.0.0"}]}, "ceres_network_policy.egress[0].cidr"),
        (
            {"egress": [{"cidr": "10.0.0.0/8", "namespace": "a"}]},
            "ceres_network_policy.egress[0] has a cidr and a namespace",
        ),
        ({"app_callers": [{"namespace": "elsewhere", "app": "a", "from": [GATEWAY]}]}, "app_callers[0].namespace"),
        ({"app_callers": [{"namespace": "shop", "app": "Cart", "from": [GATEWAY]}]}, "app_callers[0].app"),
        ({"app_callers": [{"namespace": "shop", "app": "cart", "from": []}]}, "app_callers[0].from must be"),
        ({"app_callers": [{"namespace": "shop", "app": "cart", "from": [{"pod_labels": {}}]}]}, "from[0].namespace"),
        ({"callers": {"namespace": "a"}}, "ceres_network_policy.callers must be a list"),
        (["callers"], "ceres_network_policy must be a mapping"),
    ],
)
def test_every_wrong_field_is_refused_by_name(settings, field):
    with pytest.raises(AnsibleFilterError) as refused:
        network_policies(settings, namespaces=["shop"])
    assert field in str(refused.value)


def test_the_namespaces_are_required():
    for namespaces in (None, [], ["Not A Name"]):
        with pytest.raises(AnsibleFilterError, match="namespaces must be a non-empty list"):
            network_policies({}, namespaces=namespaces)
