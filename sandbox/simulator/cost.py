# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""OpenCost's metrics for the sandbox's nodes and pods: a stand-in for the cost suite.

OpenCost (the plan's "cost optimization suite") prices every node and allocates its cost to
the containers scheduled on it, exporting gauges that Prometheus scrapes. The sandbox runs no
OpenCost container: staging applies an OpenCost Deployment (its pods simulated by kwok) and,
while a Deployment labelled ``app.kubernetes.io/name: opencost`` has an available replica,
the simulator serves what OpenCost would on ``/opencost/metrics`` (scraped as the job
``opencost`` with ``honor_labels``, as OpenCost's documentation configures it). No available
OpenCost, no series: the cost suite's absence shows in Prometheus as it would.

The metric names and label sets are OpenCost's own (``pkg/costmodel/metrics.go``):

* ``node_cpu_hourly_cost``, ``node_ram_hourly_cost``, ``node_total_hourly_cost``
  {instance, node, instance_type, region, provider_id, arch, uid}: OpenCost's default custom
  pricing (:data:`CPU_HOURLY_COST` per vCPU, :data:`RAM_HOURLY_COST_PER_GIB` per GiB), the
  total over the node's capacity;
* ``container_cpu_allocation`` (cores) and ``container_memory_allocation_bytes``
  {namespace, pod, container, instance, node, uid}: per container of every Running pod bound
  to a node, the larger of its request and its (simulated) usage, as OpenCost allocates;
* ``kubecost_cluster_info`` {id, name, provider, provisioner, region, version} = 1.

The simulated usage of a container is :data:`USAGE_CPU_CORES` and :data:`USAGE_MEMORY_BYTES`.
The sandbox has no PersistentVolumes, so ``pv_hourly_cost`` and ``pod_pvc_allocation`` have no
series. Pure functions over plain API objects; the watches and the HTTP server are elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .cluster import _mapping, _sequence, _string_labels, available_replicas
from .metrics import escape_label_value, format_number

OPENCOST_APP_LABEL = ("app.kubernetes.io/name", "opencost")
METRICS_PATH = "/opencost/metrics"

# OpenCost's default custom pricing (USD): per vCPU hour and per GiB of memory an hour.
CPU_HOURLY_COST = 0.031611
RAM_HOURLY_COST_PER_GIB = 0.004237
# What every simulated container uses: its allocation when it requests less (or nothing).
USAGE_CPU_CORES = 0.05
USAGE_MEMORY_BYTES = 64 * 1024 * 1024

CLUSTER_INFO = (
    ("id", "ceres-sandbox"),
    ("name", "ceres-sandbox"),
    ("provider", "sandbox"),
    ("provisioner", "kwok"),
    ("region", "local"),
)

NODE_LABELS = ("instance", "node", "instance_type", "region", "provider_id", "arch", "uid")
CONTAINER_LABELS = ("namespace", "pod", "container", "instance", "node", "uid")
HELP = {
    "node_cpu_hourly_cost": "hourly cost for each cpu on this node",
    "node_ram_hourly_cost": "hourly cost for each gb of ram on this node",
    "node_total_hourly_cost": "Total node cost per hour",
    "container_cpu_allocation": "Percent of a single CPU used in a minute",
    "container_memory_allocation_bytes": "Bytes of RAM used",
    "kubecost_cluster_info": "Kubecost Cluster Info",
}

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}

Series = tuple[str, tuple[tuple[str, str], ...], float]


def parse_quantity(value: Any) -> float | None:
    """A Kubernetes resource quantity ("500m", "2", "128Mi", "1e3") as a number; None when it is not one."""
    match = _QUANTITY.match(str(value).strip()) if value is not None else None
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        number = float(match.group(1)) * _SUFFIX[match.group(2)]
    except ValueError:
        return None
    return number if number >= 0 else None


def cost_suite_running(deployments: Iterable[Mapping]) -> bool:
    """Whether an OpenCost Deployment has an available replica."""
    key, value = OPENCOST_APP_LABEL
    return any(
        _string_labels(_mapping(deployment.get("metadata")).get("labels")).get(key) == value
        and available_replicas(deployment) > 0
        for deployment in deployments
    )


def _node_series(node: Mapping) -> list[Series]:
    metadata = _mapping(node.get("metadata"))
    labels = _string_labels(metadata.get("labels"))
    name = str(metadata.get("name") or "")
    capacity = _mapping(_mapping(node.get("status")).get("capacity"))
    cpus = parse_quantity(capacity.get("cpu")) or 0.0
    memory_gib = (parse_quantity(capacity.get("memory")) or 0.0) / 2.0**30
    values = (
        name,
        name,
        labels.get("node.kubernetes.io/instance-type", ""),
        labels.get("topology.kubernetes.io/region", ""),
        str(_mapping(node.get("spec")).get("providerID") or ""),
        labels.get("kubernetes.io/arch", ""),
        str(metadata.get("uid") or ""),
    )
    label_pairs = tuple(zip(NODE_LABELS, values))
    return [
        ("node_cpu_hourly_cost", label_pairs, CPU_HOURLY_COST),
        ("node_ram_hourly_cost", label_pairs, RAM_HOURLY_COST_PER_GIB),
        ("node_total_hourly_cost", label_pairs, cpus * CPU_HOURLY_COST + memory_gib * RAM_HOURLY_COST_PER_GIB),
    ]


def _container_series(pod: Mapping) -> list[Series]:
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    node = str(spec.get("nodeName") or "")
    if not node or _mapping(pod.get("status")).get("phase") != "Running":
        return []
    series: list[Series] = []
    for container in _sequence(spec.get("containers")):
        container = _mapping(container)
        requests = _mapping(_mapping(container.get("resources")).get("requests"))
        values = (
            str(metadata.get("namespace") or ""),
            str(metadata.get("name") or ""),
            str(container.get("name") or ""),
            node,
            node,
            str(metadata.get("uid") or ""),
        )
        label_pairs = tuple(zip(CONTAINER_LABELS, values))
        cpu = max(parse_quantity(requests.get("cpu")) or 0.0, USAGE_CPU_CORES)
        memory = max(parse_quantity(requests.get("memory")) or 0.0, USAGE_MEMORY_BYTES)
        series.append(("container_cpu_allocation", label_pairs, cpu))
        series.append(("container_memory_allocation_bytes", label_pairs, memory))
    return series


def opencost_series(
    deployments: Iterable[Mapping], nodes: Iterable[Mapping], pods: Iterable[Mapping], cluster_version: str = ""
) -> list[Series]:
    """Every series OpenCost would export for these nodes and pods; none while OpenCost is not running."""
    if not cost_suite_running(deployments):
        return []
    series: list[Series] = [("kubecost_cluster_info", (*CLUSTER_INFO, ("version", cluster_version)), 1.0)]
    for node in nodes:
        series += _node_series(node)
    for pod in pods:
        series += _container_series(pod)
    return series


def render(series: Sequence[Series]) -> str:
    """The series in the Prometheus text exposition format (gauges), grouped by metric."""
    by_metric: dict[str, list[Series]] = {}
    for item in series:
        by_metric.setdefault(item[0], []).append(item)
    lines = []
    for name in sorted(by_metric):
        lines.append("# HELP %s %s %s" % (name, name, HELP.get(name, "")))
        lines.append("# TYPE %s gauge" % name)
        for unused_name, labels, value in sorted(by_metric[name], key=lambda item: item[1]):
            text = ",".join('%s="%s"' % (key, escape_label_value(val)) for key, val in labels)
            lines.append("%s{%s} %s" % (name, text, format_number(value)))
    return "\n".join(lines) + "\n" if lines else ""


def slim_pod(pod: Mapping) -> Mapping:
    """What the cost model reads of a pod (the watch keeps hundreds of them)."""
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    return {
        "metadata": {key: metadata.get(key) for key in ("name", "namespace", "uid")},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": [
                {"name": _mapping(c).get("name"), "resources": _mapping(c).get("resources")}
                for c in _sequence(spec.get("containers"))
            ],
        },
        "status": {"phase": _mapping(pod.get("status")).get("phase")},
    }
