# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""OpenCost's series for the sandbox's nodes and pods (simulator.cost), and where they are served."""

from __future__ import annotations

import urllib.request

import pytest
from test_simulator_world import parse_exposition, select, sim

cost = sim.cost  # the module, for its pricing constants


def opencost(available=1, name="opencost", labels=None):
    return {
        "metadata": {
            "name": name,
            "namespace": "opencost",
            "labels": {"app.kubernetes.io/name": "opencost"} if labels is None else labels,
        },
        "status": {"availableReplicas": available},
    }


def node(name="kwok-node-0", cpu="32", memory="256Gi"):
    return {
        "metadata": {"name": name, "uid": "uid-" + name, "labels": {"kubernetes.io/arch": "amd64"}},
        "spec": {"providerID": "kwok://" + name},
        "status": {"capacity": {"cpu": cpu, "memory": memory}},
    }


def pod(name, namespace="pilot-apps", node_name="kwok-node-0", phase="Running", requests=None, containers=("app",)):
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": "uid-" + name, "managedFields": [{"big": "x"}]},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": c, "image": "x", "resources": {"requests": requests or {}}} for c in containers],
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready"}]},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("0.25", 0.25), ("128Mi", 128 * 2**20), ("1Gi", 2**30), ("1e3", 1000.0), ("1k", 1e3)],
)
def test_quantities_are_read_as_kubernetes_writes_them(text, value):
    assert sim.parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "12Qi", "-1", None, "1.2.3"])
def test_a_value_that_is_not_a_quantity_is_none(text):
    assert sim.parse_quantity(text) is None


@pytest.mark.parametrize(
    "deployments",
    [[], [opencost(available=0)], [opencost(labels={"app": "opencost"})], [opencost(available=None)]],
    ids=["no-cost-suite", "not-available", "not-labelled", "no-status"],
)
def test_no_series_while_the_cost_suite_is_not_running(deployments):
    assert sim.opencost_series(deployments, [node()], [pod("a")]) == []
    assert cost.render([]) == ""


def test_nodes_are_priced_and_running_containers_allocated_as_opencost_does():
    pods = [
        pod("big", requests={"cpu": "500m", "memory": "1Gi"}),
        pod("small", requests={"cpu": "10m", "memory": "1Mi"}, containers=("app", "istio-proxy")),
        pod("pending", phase="Pending"),
        pod("unscheduled", node_name=None),
    ]
    samples = parse_exposition(cost.render(sim.opencost_series([opencost()], [node()], pods, "v1.36.3")))

    total = select(samples, "node_total_hourly_cost", node="kwok-node-0", instance="kwok-node-0")
    assert list(total.values()) == [pytest.approx(32 * cost.CPU_HOURLY_COST + 256 * cost.RAM_HOURLY_COST_PER_GIB)]
    (labels,) = total
    assert dict(labels) == {
        "instance": "kwok-node-0",
        "node": "kwok-node-0",
        "instance_type": "",
        "region": "",
        "provider_id": "kwok://kwok-node-0",
        "arch": "amd64",
        "uid": "uid-kwok-node-0",
    }
    assert list(select(samples, "node_cpu_hourly_cost").values()) == [cost.CPU_HOURLY_COST]
    assert list(select(samples, "node_ram_hourly_cost").values()) == [cost.RAM_HOURLY_COST_PER_GIB]

    cpu = {
        dict(labels)["pod"] + "/" + dict(labels)["container"]: v
        for labels, v in select(samples, "container_cpu_allocation").items()
    }
    memory = {
        dict(labels)["pod"] + "/" + dict(labels)["container"]: v
        for labels, v in select(samples, "container_memory_allocation_bytes").items()
    }
    # the larger of the request and the simulated usage; pods not running on a node are not allocated
    assert cpu == {"big/app": 0.5, "small/app": cost.USAGE_CPU_CORES, "small/istio-proxy": cost.USAGE_CPU_CORES}
    assert memory == {
        "big/app": 2**30,
        "small/app": cost.USAGE_MEMORY_BYTES,
        "small/istio-proxy": cost.USAGE_MEMORY_BYTES,
    }
    (labels,) = select(samples, "container_cpu_allocation", pod="big")
    assert dict(labels) == {
        "namespace": "pilot-apps",
        "pod": "big",
        "container": "app",
        "instance": "kwok-node-0",
        "node": "kwok-node-0",
        "uid": "uid-big",
    }
    info = select(samples, "kubecost_cluster_info")
    assert list(info.values()) == [1.0] and ("version", "v1.36.3") in next(iter(info))


def test_the_cost_model_keeps_only_what_it_reads_of_a_pod_and_counts_apart_from_the_traffic():
    traffic = sim.ClusterModel()
    costs = sim.ClusterModel(sim.COST_KINDS, slim={sim.POD: cost.slim_pod})
    assert costs.missing_kinds() == ["Node", "Pod"]
    costs.replace("Pod", [pod("a", requests={"cpu": "1"})])
    costs.replace("Node", [node()])
    assert costs.missing_kinds() == [] and traffic.generation == 0
    (kept,) = costs.objects("Pod")
    assert "managedFields" not in kept["metadata"] and "conditions" not in kept["status"]
    assert "image" not in kept["spec"]["containers"][0]
    costs.apply("Pod", "DELETED", pod("a"))
    assert costs.objects("Pod") == []


def test_the_http_server_serves_the_cost_series_on_their_own_path():
    registry = sim.MetricsRegistry()
    served = {"text": ""}
    server = sim.start_http_server(
        ("127.0.0.1", 0), registry, list, {sim.OPENCOST_METRICS_PATH: lambda: served["text"]}
    )
    try:
        url = "http://127.0.0.1:%d%s" % (server.server_address[1], sim.OPENCOST_METRICS_PATH)
        served["text"] = cost.render(sim.opencost_series([opencost()], [node()], []))
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert select(parse_exposition(body), "node_total_hourly_cost")
    finally:
        server.shutdown()
        server.server_close()
