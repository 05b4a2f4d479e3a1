"""NetworkPolicies that matter in the sandbox: the simulator refuses what cyclonus's engine says they deny.

A scratch namespace with one canary app (the demo world's shape). A default-deny without its allows: the requests are
refused (503 UF, the caller's proxy reporting them), the simulator's routing log names the policy, and the metric gate
fails. Then the security role's policies (the local inventory's ceres_network_policy: DNS, istiod, the ingress
gateway on 8080, the default-deny last): the traffic flows again and the gate passes; a second run changes nothing;
a caller of one app removed from the settings has its policy removed. The engine itself (ceres-netpol) is asked
directly about the classic NetworkPolicy trap (one peer with a namespace and a pod selector is AND; two peers is OR).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml
from canary_world import canary_workload, create_app
from integration_support import ROOT, SANDBOX_ENV, prometheus_query, run_ansible, wait_for
from kubernetes import client

APP = "cart"
RPS = 400
SCRAPE_INTERVAL = SANDBOX_ENV.get("CERES_SANDBOX_SCRAPE_INTERVAL") or "1s"
INVENTORY_SETTINGS = yaml.safe_load((ROOT / "inventories/local/group_vars/all/cluster.yml").read_text())[
    "ceres_network_policy"
]


def _engine() -> str:
    return SANDBOX_ENV["CERES_NETPOL_ENGINE"]


@pytest.fixture(scope="module")
def shop(kube):
    core = client.CoreV1Api(kube)
    namespace = "netpol-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": namespace, "labels": {"ceres.io/test": "true"}}})
    try:
        create_app(kube, namespace, APP, {}, 50, RPS)
        wait_for(lambda: _rate(namespace, 'reporter="destination"', "5s"), timeout=90, message="traffic of %s" % APP)
        yield namespace
    finally:
        core.delete_namespace(namespace)


def _rate(namespace: str, selector: str, window: str) -> float:
    result = prometheus_query(
        'sum(rate(istio_requests_total{destination_service_namespace="%s",%s}[%s]))' % (namespace, selector, window)
    )
    return float(result[0]["value"][1]) if result else 0.0


def _gate(namespace: str, window: str) -> dict:
    params = {
        "namespace": namespace,
        "workload": canary_workload(APP),
        "service": APP,
        "window": window,
        "scrape_interval": SCRAPE_INTERVAL,
    }
    args = {
        "checks": [{"name": "error-rate", "template": "istio_error_rate", "params": params, "max": 0.01}],
        "samples": 2,
        "interval": "2s",
    }
    return _play(
        [{"name": "Gate", "ceres.rollout.metric_gate": args, "register": "play_result", "ignore_errors": True}]
    )


def _play(tasks: list, extra_vars: dict | None = None) -> dict:
    """Run ``tasks`` on localhost; what they leave in ``play_result``, with the output under ``_output``."""
    with tempfile.TemporaryDirectory() as work_dir:
        result_path = Path(work_dir) / "result.json"
        playbook = [
            {
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                "tasks": [
                    *tasks,
                    {
                        "name": "Save the result",
                        "ansible.builtin.copy": {"content": "{{ play_result | to_json }}", "dest": str(result_path)},
                        "changed_when": False,  # the test's own file: not a change of the world
                    },
                ],
            }
        ]
        path = Path(work_dir) / "play.yml"
        path.write_text(json.dumps(playbook))
        extra = ["-e", json.dumps(extra_vars)] if extra_vars else []
        completed = run_ansible(["ansible-playbook", "-i", "localhost,", str(path), *extra], check=False)
        result = json.loads(result_path.read_text()) if result_path.exists() else {"failed": True}
        result["_output"] = completed.stdout + completed.stderr
        return result


def _security(namespace: str, settings: dict) -> dict:
    """The security role's NetworkPolicy tasks on ``namespace``, with the admin's kubeconfig."""
    tasks = [
        {
            "name": "NetworkPolicies",
            "ansible.builtin.include_role": {"name": "ceres.rollout.security", "tasks_from": "network_policy.yml"},
            "vars": {
                "security_app_namespaces": [namespace],
                "security_network_policy": settings,
                "security_kubeconfig": SANDBOX_ENV["KUBECONFIG"],
                "security_kube_context": "",
            },
        },
        {"name": "Done", "ansible.builtin.set_fact": {"play_result": {"ran": True}}},
    ]
    return _play(tasks)


def _policies(kube, namespace: str) -> set:
    items = client.NetworkingV1Api(kube).list_namespaced_network_policy(namespace).items
    return {item.metadata.name for item in items}


def _simulator_log() -> str:
    return (Path(SANDBOX_ENV["CERES_SANDBOX_DIR"]) / "logs" / "simulator.log").read_text(errors="replace")


# --- the engine ---------------------------------------------------------------------------------


def test_the_engine_answers_with_kubernetes_semantics_and_names_the_denying_policy():
    both = {"namespaceSelector": {"matchLabels": {"team": "web"}}, "podSelector": {"matchLabels": {"app": "gw"}}}
    either = [{"namespaceSelector": {"matchLabels": {"team": "web"}}}, {"podSelector": {"matchLabels": {"app": "gw"}}}]

    def policy(name, peers):
        return {
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": peers, "ports": [{"port": "http"}]}],
            },
        }

    # a pod labelled app=gw in the shop namespace itself (not team=web): only the OR form lets it in
    source = {"namespace": "shop", "podLabels": {"app": "gw"}}
    destination = {"namespace": "shop", "podLabels": {"app": "cart"}}
    query = {"source": source, "destination": destination, "port": 8080, "portName": "http", "protocol": "TCP"}
    requests = [
        {"policies": [policy("and", [both])], "queries": [query]},
        {"policies": [policy("or", either)], "queries": [query, dict(query, portName="metrics", port=15090)]},
    ]
    completed = subprocess.run(
        [_engine()],
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answers = [json.loads(line) for line in completed.stdout.splitlines()]
    assert answers[0]["results"][0]["allowed"] is False and answers[0]["results"][0]["denying"] == ["shop/and"]
    assert answers[1]["results"][0]["allowed"] is True
    assert answers[1]["results"][1]["allowed"] is False  # the named port is http, not metrics


def test_no_step_of_applying_or_removing_the_roles_policies_cuts_needed_traffic():
    """A NetworkPolicy that allows one thing isolates its pods from everything else: the policies must land (and go)
    in an order where every intermediate set still allows DNS, istiod, the gateway and the app's callers."""
    sys.path.insert(0, str(ROOT / ".collections"))
    from ansible_collections.ceres.rollout.plugins.filter.network_policies import network_policies

    settings = dict(
        INVENTORY_SETTINGS,
        app_callers=[{"namespace": "shop", "app": APP, "from": [{"namespace": "shop", "pod_labels": {"app": "web"}}]}],
    )
    policies = network_policies(settings, namespaces=["shop"])
    applied = policies  # the role applies them in the filter's order
    order = [int(p["metadata"]["labels"]["rollout.ceres.io/apply-order"]) for p in policies]
    assert order == sorted(order)
    removed = sorted(policies, key=lambda p: -int(p["metadata"]["labels"]["rollout.ceres.io/apply-order"]))
    cart = {"namespace": "shop", "podLabels": {"app": APP, "version": "v3.0.0"}}
    web = {"namespace": "shop", "podLabels": {"app": "web"}}
    needed = [
        (
            "gateway -> cart",
            {"namespace": "istio-system", "podLabels": {"app": "istio-ingressgateway"}},
            cart,
            8080,
            "TCP",
        ),
        ("cart -> istiod", cart, {"namespace": "istio-system", "podLabels": {"app": "istiod"}}, 15012, "TCP"),
        ("cart -> dns", cart, {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}}, 53, "UDP"),
        ("web -> cart", web, cart, 8080, "TCP"),
        ("web -> dns", web, {"namespace": "kube-system", "podLabels": {"k8s-app": "kube-dns"}}, 53, "UDP"),
    ]
    queries = [
        {"source": source, "destination": destination, "port": port, "protocol": protocol}
        for unused_name, source, destination, port, protocol in needed
    ]
    stages = [
        ("applied %s" % [p["metadata"]["name"] for p in applied[:n]], applied[:n]) for n in range(1, len(applied) + 1)
    ]
    stages += [
        ("removed %s" % [p["metadata"]["name"] for p in removed[:n]], removed[n:]) for n in range(1, len(removed))
    ]
    requests = "".join(json.dumps({"policies": stage, "queries": queries}) + "\n" for unused, stage in stages)
    completed = subprocess.run([_engine()], input=requests, capture_output=True, text=True, timeout=60, check=True)
    cut = [
        "%s: %s denied by %s" % (stage, needed[index][0], result["denying"])
        for (stage, unused), line in zip(stages, completed.stdout.splitlines())
        for index, result in enumerate(json.loads(line)["results"])
        if not result["allowed"]
    ]
    assert not cut, "\n".join(cut)


# --- default-deny alone, then the role's policies --------------------------------------------------


def test_a_default_deny_without_its_allows_refuses_the_requests_and_the_gate_fails(kube, shop):
    policies = client.NetworkingV1Api(kube)
    # ingress denied: the gateway's connections are dropped - 503 UF, the caller reporting them
    policies.create_namespaced_network_policy(
        shop, {"metadata": {"name": "deny-ingress"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    )
    refused = 'reporter="source",response_flags="UF",destination_workload="unknown"'
    wait_for(lambda: _rate(shop, refused, "5s") > 0, timeout=60, message="503 UF in %s" % shop)
    log = _simulator_log()
    assert "NetworkPolicy denies istio-system/istio-ingressgateway -> %s/cart-v3-0-0:8080" % shop in log
    assert "(%s/deny-ingress)" % shop in log

    result = _gate(shop, "5s")
    assert result.get("failed") is True, result["_output"]
    assert result["verdict"] == "fail"
    # the window still holds some answered requests from before the policy; the refused ones dominate it
    assert result["checks"][0]["values"][-1] > 0.5, result["checks"]

    # egress denied too: the sidecars cannot reach istiod, the pods never become ready - 503 UH
    policies.patch_namespaced_network_policy("deny-ingress", shop, {"spec": {"policyTypes": ["Ingress", "Egress"]}})
    unready = 'reporter="source",response_flags="UH",destination_workload="unknown"'
    wait_for(lambda: _rate(shop, unready, "5s") > 0, timeout=60, message="503 UH in %s" % shop)
    assert "sidecar not ready: NetworkPolicy denies %s/cart-v3-0-0 -> istio-system/istiod:15012/TCP" % shop in (
        _simulator_log()
    )
    policies.delete_namespaced_network_policy("deny-ingress", shop)


def test_the_security_roles_policies_let_the_traffic_through_and_converge(kube, shop):
    settings = dict(
        INVENTORY_SETTINGS,
        app_callers=[{"namespace": shop, "app": APP, "from": [{"namespace": shop, "pod_labels": {"app": "web"}}]}],
    )
    # the refusals of the previous test drain out of the window first
    refused = 'reporter="source",response_code="503",destination_workload="unknown"'
    wait_for(lambda: _rate(shop, refused, "10s") == 0, timeout=60, message="no 503 in %s for 10s" % shop)
    log_offset = len(_simulator_log())
    first = _security(shop, settings)
    assert first.get("ran") is True, first["_output"]
    # not a moment without DNS, istiod or the gateway while the policies landed (a NetworkPolicy that allows one
    # thing isolates its pods from everything else)
    denials = [line for line in _simulator_log()[log_offset:].splitlines() if shop in line and "denies" in line]
    assert not denials, denials
    wanted = {"ceres-allow", "ceres-default-deny"}
    assert _policies(kube, shop) >= wanted | {"ceres-allow-callers-%s" % APP}

    # nothing is refused, and the gate passes
    wait_for(lambda: _rate(shop, refused, "10s") == 0, timeout=60, message="no 503 in %s for 10s" % shop)
    assert _rate(shop, 'reporter="destination",destination_workload="%s"' % canary_workload(APP), "10s") > 0
    result = _gate(shop, "10s")
    assert not result.get("failed"), result["_output"]
    assert result["verdict"] == "pass" and result["checks"][0]["values"] == [0.0, 0.0]

    second = _security(shop, settings)
    assert "changed=0" in second["_output"], second["_output"]

    # the caller of one app removed from the settings: its policy goes, the rest stay
    third = _security(shop, INVENTORY_SETTINGS)
    assert third.get("ran") is True, third["_output"]
    assert _policies(kube, shop) == wanted

    # and the simulator was asked about them all along: with only the allows, traffic still flows
    time.sleep(3)
    assert _rate(shop, refused, "3s") == 0


def test_a_wrong_field_is_refused_before_anything_is_applied(kube, shop):
    before = _policies(kube, shop)
    result = _security(shop, dict(INVENTORY_SETTINGS, callers=[{"namespace": "istio-system", "pod_labels": ["app"]}]))
    assert "ran" not in result
    assert "ceres_network_policy.callers[0].pod_labels must be a mapping" in result["_output"]
    assert _policies(kube, shop) == before
